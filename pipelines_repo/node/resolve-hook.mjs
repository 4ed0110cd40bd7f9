// ESM resolve hook: a bare specifier the pipeline file cannot resolve from its own folder
// (e.g. "braintrust" when the file sits in PIPELINES_DIR without a node_modules) is retried
// from this room's package.json, so the pinned packages resolve. NODE_PATH covers CommonJS.
const FALLBACK_PARENT = new URL("./package.json", import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const bare = !/^(\.|\/|file:|node:|data:)/.test(specifier);
    if (!bare || error?.code !== "ERR_MODULE_NOT_FOUND" || context.parentURL === FALLBACK_PARENT) {
      throw error;
    }
    return nextResolve(specifier, { ...context, parentURL: FALLBACK_PARENT });
  }
}
