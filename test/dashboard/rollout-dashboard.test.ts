/**
 * Staged rollouts on the admin listener (issue 17), over real HTTP: the dashboard shows each
 * device's rollout (steps, where it is, why paused) with a Pause/Resume form; `POST /rollout`
 * is protected exactly like `POST /verify` (Host check, cross-origin refusal, and with
 * admin_token_file the token or session cookie); /metrics carries the si_rollout_* families
 * and passes `promtool check metrics`.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../src/config/types.js";
import { prepareOperations, type Operations } from "../../src/dashboard/operations.js";
import { parseRolloutSteps } from "../../src/model/rollout-steps.js";
import { startRollout } from "../../src/rollout/actions.js";
import { startListeners, type ListenerGroup } from "../../src/server/listener.js";
import { RolloutStore } from "../../src/state/rollouts.js";
import { publishBasicImage, treeFixture, type TreeFixture } from "../tree/fixture.js";
import { ask, collectingLogger } from "./keyring-instance.js";

const TOKEN = "0123456789abcdef0123456789abcdef";
const FORM = "application/x-www-form-urlencoded";

async function serveAdmin(config: Config): Promise<{ ops: Operations; admin: ListenerGroup; port: number }> {
  const ops = prepareOperations(config, { logger: collectingLogger(), schedule: false, adminPort: 0 });
  const admin = await startListeners([ops.listener!], 1000);
  await ops.start(admin.urls.admin);
  return { ops, admin, port: admin.ports.admin };
}

describe("staged rollouts on the dashboard", () => {
  let fx: TreeFixture;
  let open: Awaited<ReturnType<typeof serveAdmin>>;
  let locked: Awaited<ReturnType<typeof serveAdmin>>;
  const state = () => RolloutStore.with(fx.config.state_path, (s) => s.latest("devel", "mako"))!;

  beforeAll(async () => {
    fx = await treeFixture();
    await fx.tree.createChannel("devel");
    await fx.tree.createDevice("devel", "mako");
    // Version 1234 at 50 %: the rollout starts there.
    await publishBasicImage(fx, "devel", "mako");
    await startRollout(
      { config: fx.config, signer: fx.signer },
      { channel: "devel", device: "mako", version: 1234, steps: parseRolloutSteps("50%@0h, 75%@12h, 100%@24h") },
    );
    open = await serveAdmin({ ...fx.config, admin_token_file: undefined });
    const tokenFile = join(fx.inst.base, "admin-token");
    writeFileSync(tokenFile, TOKEN + "\n", { mode: 0o600 });
    locked = await serveAdmin({ ...fx.config, admin_token_file: tokenFile });
  });
  afterAll(async () => {
    for (const s of [open, locked]) {
      await s?.ops.stop(1000);
      await s?.admin.close();
      s?.ops.close();
    }
  });

  const post = (port: number, action: string, headers: Record<string, string>) =>
    ask(port, "POST", "/rollout", { "Content-Type": FORM, ...headers }, `action=${action}&channel=devel&device=mako`);

  it("shows the rollout's steps and state with a Pause form, and the adoption section", async () => {
    const page = (await ask(open.port, "GET", "/", { Host: `127.0.0.1:${open.port}` })).body;
    expect(page).toContain('<section id="adoption"><h2>Adoption</h2>');
    expect(page).toContain("<strong>Staged rollout</strong> of version 1234:");
    expect(page).toMatch(/<span class="badge info">active<\/span> at 50 % \(step 1\) · next step <time datetime="\d{4}-/);
    expect(page).toContain(
      '<ol class="steps"><li><strong>50%@0h</strong></li><li class="muted">75%@12h</li><li class="muted">100%@24h</li></ol>',
    );
    expect(page).toContain(
      '<form method="post" action="rollout"><input type="hidden" name="action" value="pause"><input type="hidden" name="channel" value="devel"><input type="hidden" name="device" value="mako"><button type="submit">Pause</button></form>',
    );
  });

  it("refuses a cross-origin POST, a wrong method or form; pauses and resumes from its own page", async () => {
    const host = `127.0.0.1:${open.port}`;
    expect((await ask(open.port, "GET", "/rollout", { Host: host })).status).toBe(405);
    const foreign = await post(open.port, "pause", { Host: host, Origin: "http://evil.example" });
    expect([foreign.status, foreign.body]).toEqual([403, "Cross-origin request refused\n"]);
    // A rebinding page's own Host is refused before any route runs.
    expect((await post(open.port, "pause", { Host: "evil.example:8090", Origin: "http://evil.example:8090" })).status).toBe(421);
    expect(
      (
        await ask(
          open.port,
          "POST",
          "/rollout",
          { Host: host, Origin: `http://${host}`, "Content-Type": FORM },
          "action=stop&channel=devel&device=mako",
        )
      ).status,
    ).toBe(400);
    expect(state().state).toBe("active");

    const paused = await post(open.port, "pause", { Host: host, Origin: `http://${host}` });
    expect([paused.status, paused.headers.location]).toEqual([303, "./#channels"]);
    expect(state()).toMatchObject({ state: "paused", reason: "paused from the dashboard" });
    const page = (await ask(open.port, "GET", "/", { Host: host })).body;
    expect(page).toContain('<span class="badge warn">paused</span>');
    expect(page).toContain('<p class="error">Paused: paused from the dashboard</p>');
    expect(page).toContain(
      'value="resume"><input type="hidden" name="channel" value="devel"><input type="hidden" name="device" value="mako"><button type="submit">Resume</button>',
    );
    // Pausing a paused rollout is harmless; resuming one that is not paused neither.
    expect((await post(open.port, "pause", { Host: host })).status).toBe(303);
    expect((await post(open.port, "resume", { Host: host, Origin: `http://${host}` })).status).toBe(303);
    expect(state()).toMatchObject({ state: "active", reason: null });
    expect(
      (await ask(open.port, "POST", "/rollout", { Host: host, "Content-Type": FORM }, "action=pause&channel=devel&device=nope")).status,
    ).toBe(409);
  });

  it("with admin_token_file, a POST needs the token (or session cookie) as well", async () => {
    const host = `127.0.0.1:${locked.port}`;
    const anonymous = await post(locked.port, "pause", { Host: host, Origin: `http://${host}` });
    expect(anonymous.status).toBe(401);
    expect(state().state).toBe("active");
    const wrong = await post(locked.port, "pause", { Host: host, Authorization: "Bearer not-the-token-at-all" });
    expect(wrong.status).toBe(401);
    const bearer = await post(locked.port, "pause", { Host: host, Origin: `http://${host}`, Authorization: `Bearer ${TOKEN}` });
    expect(bearer.status).toBe(303);
    expect(state().state).toBe("paused");
    // The token does not make a cross-origin POST acceptable.
    const foreign = await post(locked.port, "resume", { Host: host, Origin: "http://evil.example", Authorization: `Bearer ${TOKEN}` });
    expect(foreign.status).toBe(403);
    expect(state().state).toBe("paused");
    expect((await post(locked.port, "resume", { Host: host, Authorization: `Bearer ${TOKEN}` })).status).toBe(303);
  });

  it("/metrics has the rollout families and passes promtool check metrics", async () => {
    const r = await ask(open.port, "GET", "/metrics", { Host: `127.0.0.1:${open.port}` });
    expect(r.status).toBe(200);
    expect(r.body).toContain('si_rollout_percentage{channel="devel",device="mako",version="1234"} 50\n');
    expect(r.body).toContain('si_rollout_paused{channel="devel",device="mako",version="1234"} 0\n');
    expect(r.body).toContain('si_rollout_step{channel="devel",device="mako",version="1234"} 1\n');
    const file = join(fx.inst.base, "metrics.txt");
    writeFileSync(file, r.body);
    // promtool reads the exposition on stdin; exit 0 = valid (lint problems are printed, not fatal).
    execFileSync("sh", ["-c", `promtool check metrics < ${file}`], { stdio: "pipe" });
  });
});
