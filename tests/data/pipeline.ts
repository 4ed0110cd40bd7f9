import { DatasetPipeline } from "braintrust";

DatasetPipeline({
  name: "support-cases", // Optional; required only when a file defines multiple pipelines
  source: {
    projectName: "Customer Support", // Replace with your source project
    filter: "metadata.flagged = true", // Optional SQL filter; omit to consider all spans
    scope: "span", // "span" (default) or "trace"
  },
  transform: ({ id, input, output, expected, metadata, trace }) => ({
    input,
    expected: output,
    metadata: {
      model: metadata?.model,
      topic: metadata?.topic,
      user_id: metadata?.user_id,
    },
    tags: ["flagged"],
  }),
  target: {
    projectName: "Customer Support",
    datasetName: "Support cases",
    description: "Flagged support conversations, kept as regression cases",
  },
});
