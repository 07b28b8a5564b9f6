/**
 * `si rollout start|pause|resume|abort|status|tick` (issue 17): staged rollouts of a device's
 * newest image. `si serve` ticks them every minute; `si rollout tick` does one tick by hand
 * (for deployments that run it from cron instead).
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { intOption } from "../../admin/args.js";
import { UsageError } from "../../errors.js";
import { parseRolloutSteps } from "../../model/rollout-steps.js";
import { abortRollout, pauseRollout, resumeRollout, rolloutStatus, startRollout } from "../../rollout/actions.js";
import { describeRollout, summarize } from "../../rollout/describe.js";
import { describeTick, tickRollouts } from "../../rollout/tick.js";
import type { Rollout } from "../../state/rollouts.js";
import { adminContext, commonOptions, emit, type CommonOptions } from "../admin-options.js";

interface StartOptions extends CommonOptions {
  steps?: string;
  floor?: number;
  grace?: number;
  minDownloads?: number;
}

function stepsOption(value: string) {
  try {
    return parseRolloutSteps(value);
  } catch (err) {
    throw new UsageError(`argument --steps: ${(err as Error).message}`);
  }
}

function hoursOption(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value.trim())) throw new UsageError(`argument --grace: expected hours >= 0, got '${value}'`);
  return Number(value);
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("rollout")
    .description("staged rollouts: raise a device's newest image from a few percent of devices to all, pausing on failed downloads");
  const show = (o: CommonOptions, r: Rollout, verb: string) =>
    emit(ctx, o, [`I: ${verb} ${describeRollout(r, new Date())}`], summarize(r, new Date()));

  commonOptions(
    cmd
      .command("start <channel> <device> <version>")
      .description("publish VERSION (the newest) at the first step's percentage and raise it at each step's time")
      .option("--steps <steps>", "e.g. '5%@0h, 25%@24h, 100%@72h' (default: the channel's rollout)")
      .option("--floor <percent>", "pause when fewer downloads complete than this (default: rollout_floor)", intOption("--floor"))
      .option("--grace <hours>", "hours after a step before the floor applies (default: rollout_grace)", hoursOption)
      .option("--min-downloads <n>", "started downloads needed before the floor applies", intOption("--min-downloads")),
  ).action(async (channel: string, device: string, version: string, o: StartOptions) => {
    const v = intOption("VERSION")(version);
    const steps = o.steps === undefined ? undefined : stepsOption(o.steps);
    if (o.floor !== undefined && (o.floor < 0 || o.floor > 100)) throw new UsageError(`argument --floor: must be 0..100, got ${o.floor}`);
    const r = await startRollout(await adminContext(ctx, o), {
      channel,
      device,
      version: v,
      steps,
      floor: o.floor,
      graceHours: o.grace,
      minDownloads: o.minDownloads,
    });
    show(o, r, "started");
  });
  commonOptions(cmd.command("pause <channel> <device>").description("keep the rollout at its percentage until resumed")).action(
    async (channel: string, device: string, o: CommonOptions) =>
      show(o, await pauseRollout(await adminContext(ctx, o), channel, device), "paused"),
  );
  commonOptions(
    cmd.command("resume <channel> <device>").description("raise the rollout again (the time paused does not count toward the next step)"),
  ).action(async (channel: string, device: string, o: CommonOptions) =>
    show(o, await resumeRollout(await adminContext(ctx, o), channel, device), "resumed"),
  );
  commonOptions(cmd.command("abort <channel> <device>").description("pull the image: phased-percentage 0, no device takes it")).action(
    async (channel: string, device: string, o: CommonOptions) =>
      show(o, await abortRollout(await adminContext(ctx, o), channel, device), "aborted"),
  );
  commonOptions(cmd.command("status [channel] [device]").description("the newest rollout of each device"), { lock: false }).action(
    async (channel: string | undefined, device: string | undefined, o: CommonOptions) => {
      const conf = await ctx.config();
      const now = new Date();
      const rows = rolloutStatus(conf.state_path, channel, device);
      const lines = rows.length ? rows.map((r) => describeRollout(r, now)) : ["No rollouts."];
      emit(
        ctx,
        o,
        lines,
        rows.map((r) => summarize(r, now)),
      );
    },
  );
  commonOptions(
    cmd.command("tick").description("one rollout tick: pause, supersede and raise what is due (si serve does it every minute)"),
  ).action(async (o: CommonOptions) => {
    const report = await tickRollouts(await adminContext(ctx, o));
    emit(ctx, o, describeTick(report), report);
  });
}
