#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm ci` (the prepare script).
import { exitQuietlyWhenOutputCloses } from "../dist/src/cli/context.js";
import { main } from "../dist/src/cli/main.js";

// `si ... | head -3`: exit 141 without a stack trace when the reader goes (context.ts).
exitQuietlyWhenOutputCloses();

main(process.argv).then((code) => {
  process.exitCode = code;
});
