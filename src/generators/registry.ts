/**
 * `generate_file` (server-reference §5.1): the generator names and their modules. Every
 * failure leaves here as one GeneratorError naming the generator, the channel/device and the
 * cause, which the importer records with the cancelled image.
 */
import { GeneratorError, SiError, errorMessage } from "../errors.js";
import { cdimageCustom, cdimageDeviceRaw, cdimageUbuntu } from "./cdimage.js";
import { http, httpCdimage } from "./http.js";
import { keyring } from "./keyring.js";
import { remoteSystemImage } from "./remote-system-image.js";
import { systemImage } from "./system-image.js";
import type { Environment, Generator, GeneratorContext } from "./types.js";
import { version } from "./version.js";

export const GENERATORS: ReadonlyMap<string, Generator> = new Map<string, Generator>([
  ["version", version],
  ["cdimage-ubuntu", cdimageUbuntu],
  ["cdimage-custom", cdimageCustom],
  ["cdimage-device-raw", cdimageDeviceRaw],
  ["http", http],
  ["http-cdimage", httpCdimage],
  ["keyring", keyring],
  ["system-image", systemImage],
  ["remote-system-image", remoteSystemImage],
]);

/**
 * Runs generator `name`: the real path of its file, or null when it has nothing to offer
 * (version/keyring with no new files). An unknown name is `Invalid generator: <name>`.
 */
export async function generateFile(ctx: GeneratorContext, name: string, args: string[], env: Environment): Promise<string | null> {
  const gen = GENERATORS.get(name);
  if (!gen) throw new GeneratorError(`Invalid generator: ${name}`);
  try {
    return await gen(ctx, args, env);
  } catch (err) {
    const kind = err instanceof SiError ? err.kind : "Exception";
    throw new GeneratorError(`Cannot generate ${name} for ${env.channel_name}/${env.device_name}: ${errorMessage(err)}`, kind, {
      cause: err,
    });
  }
}
