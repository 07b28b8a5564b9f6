/**
 * The layering of src/ as a checked rule (issue 18; README "Architecture"). Layers from the
 * bottom up; a module may import its own layer and the layers below, never one above. The
 * fixes for the violations found when this file was written moved code to where it belongs
 * (RequestCounts into server/, the device operations and the alias sync they recurse into
 * one module); there are no exceptions here.
 */
const LAYERS = [
  ["errors.ts", "version.ts", "format"], // the error types, the JSON writer
  ["config", "io", "model", "state"], // the config, IO primitives, the pure domain, history
  ["archive"], // tar, inspection, deltas
  ["pgp"], // keys, signatures (keyrings are tarballs)
  ["fleet"], // what devices fetched: adoption figures from access logs
  ["tree", "server"], // the published tree; serving it
  ["verify", "generators", "deploy", "mirror"], // verify-tree; image generators; the nginx site; mirror pushes
  ["importer"], // import-images
  ["admin", "keys", "scheduler", "rollout"], // admin commands, key management, the scheduler, staged rollouts
  ["shell", "dashboard", "instance", "demo"], // the REPL, the admin listener, si init, the demo
  ["cli"], // the one error boundary
];

/** `^src/(a|b)(/|$)`: a path regex for some layer entries. */
const under = (entries) => `^src/(${entries.map((e) => e.replace(/\./g, "\\.")).join("|")})(/|$)`;

const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `layer-${i}-imports-upward`,
  comment: `${layer.join(", ")} must not import a higher layer (${LAYERS.slice(i + 1)
    .flat()
    .join(", ")})`,
  severity: "error",
  from: { path: under(layer) },
  to: { path: under(LAYERS.slice(i + 1).flat()) },
}));

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "modules that import each other: move the shared part down, or merge them if they are one idea",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "pure-domain-no-io",
      comment: "model/ and format/ are pure: no file system, network, process or OS access (README: rules kept throughout)",
      severity: "error",
      from: { path: "^src/(model|format)/" },
      to: {
        dependencyTypes: ["core"],
        path: "^(node:)?(fs|fs/promises|net|http|https|http2|tls|dgram|dns|dns/promises|child_process|worker_threads|cluster|readline|os|process|inspector|v8|vm)$",
      },
    },
    {
      name: "pure-domain-no-io-modules",
      comment: "model/ and format/ do not reach IO through src/io either",
      severity: "error",
      from: { path: "^src/(model|format)/" },
      to: { path: "^src/io/" },
    },
    {
      name: "nothing-imports-cli",
      comment: "cli/ is the top: commands and the error boundary; nothing below may import it",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/cli/" },
      to: { path: "^src/cli/" },
    },
    {
      name: "server-not-dashboard",
      comment: "the public listeners (server/) do not import the admin listener (dashboard/)",
      severity: "error",
      from: { path: "^src/server/" },
      to: { path: "^src/dashboard/" },
    },
    ...upward,
    {
      name: "not-to-unresolvable",
      comment: "an import that resolves to nothing",
      severity: "error",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default"],
      extensions: [".ts", ".js"],
    },
  },
};
