import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { UsageError } from "../../errors.js";
import { intOption } from "../../admin/args.js";
import { commonOptions, runAdmin, type CommonOptions } from "../admin-options.js";
import * as tc from "../../admin/tree-commands.js";

const collect = (value: string, prev: string[]) => [...prev, value];

/** `--lang fr=Texte` → { fr: "Texte" }. */
function translations(items: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`argument --lang: expected LANG=TEXT, got '${item}'`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

export function register(program: Command, ctx: CliContext): void {
  const image = program
    .command("image")
    .description("list, create (from signed files in the tree), describe and remove the images of a device");
  const sub = (spec: string, description: string, lock = true) => commonOptions(image.command(spec).description(description), { lock });
  const version = intOption("VERSION");
  const base = intOption("--delta");

  sub("list <channel> <device>", "list a device's images", false).action((channel: string, device: string, o: CommonOptions) =>
    runAdmin(ctx, o, (a) => tc.listImages(a, channel, device)),
  );
  sub("create <channel> <device> <version> <files...>", "publish an image made of FILES (in the tree, each with its .asc), in order")
    .option("--delta <base>", "a delta image from version BASE", base)
    .option("--description <text>", "description (default: the version detail)")
    .option("--version-detail <detail>", "version_detail, e.g. ubports=20240101,tag=OTA-1")
    .option("--minversion <n>", "devices older than N must take this full image", intOption("--minversion"))
    .option("--bootme", "devices reboot into this image right after applying it")
    .action((channel: string, device: string, v: string, files: string[], o: CommonOptions & tc.ImageCreateOptions & { delta?: number }) =>
      runAdmin(ctx, o, (a) =>
        tc.createImage(a, channel, device, version(v), files, {
          base: o.delta,
          description: o.description,
          versionDetail: o.versionDetail,
          minversion: o.minversion,
          bootme: o.bootme,
        }),
      ),
    );
  sub("remove <channel> <device> <version>", "remove the full image VERSION (or with --delta, the delta from BASE)")
    .option("--delta <base>", "the delta image from version BASE", base)
    .action((channel: string, device: string, v: string, o: CommonOptions & { delta?: number }) =>
      runAdmin(ctx, o, (a) => tc.removeImage(a, channel, device, version(v), o.delta)),
    );
  sub("describe <channel> <device> <version> <text>", "set an image's description (and translations)")
    .option("--lang <lang=text>", "a translation (repeatable): --lang fr=Texte", collect, [] as string[])
    .option("--delta <base>", "the delta image from version BASE", base)
    .action((channel: string, device: string, v: string, text: string, o: CommonOptions & { lang: string[]; delta?: number }) =>
      runAdmin(ctx, o, (a) => tc.describeImage(a, channel, device, version(v), text, translations(o.lang), o.delta)),
    );
}
