import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { adminContext, commonOptions, emit, type CommonOptions } from "../admin-options.js";
import { cleanupTree, describeCleanup } from "../../admin/cleanup.js";

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("cleanup-tree")
    .description("expire old images (fullcount), re-sync aliases, delete orphaned files; exits 0 if an import holds the lock");
  commonOptions(cmd, { lock: false }).action(async (o: CommonOptions) => {
    const actx = await adminContext(ctx, o);
    const res = await cleanupTree(actx);
    emit(ctx, o, describeCleanup(res, actx.config.publish_path), res);
  });
}
