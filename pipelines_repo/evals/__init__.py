"""Evaluations: eval files written for `braintrust eval`, run pinned to a dataset version (no Dagster imports).

    loading.collect_evals()          # the loader: the SDK's lazy registration while a file runs
    loading.eval_specs(found, path, module_globals) -> [EvalSpec]
    run.run_eval(spec, dataset_version=, base_experiment_id=, settings=, local_db=) -> EvalRun
    history.dataset_runs(client, project, dataset, row_id=) -> the experiments that used a dataset

`Eval(...)` called while a file loads registers the evaluator (as under `braintrust eval`) and
evaluates nothing; a run happens in a subprocess (the SDK's state is process-global), against
the configured plane: real Braintrust, or the local plane served on a loopback port for the run.
"""
