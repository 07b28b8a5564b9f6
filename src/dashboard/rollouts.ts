/**
 * Staged rollouts on the dashboard (issue 17): per device, the rollout's steps, where it is,
 * why it is paused, and Pause/Resume buttons. The buttons are plain POST forms to `rollout`,
 * protected exactly like "Verify now": the access gate (Host check, token) runs first, then
 * the handler refuses any cross-origin POST (access.ts sameOrigin); the session cookie is
 * SameSite=Strict, so another site's form never carries it.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Config } from "../config/types.js";
import { errorMessage, SiError } from "../errors.js";
import { pauseRollout, resumeRollout } from "../rollout/actions.js";
import type { RolloutSummary } from "../rollout/describe.js";
import { readForm, sameOrigin } from "./access.js";
import { html, type SafeHtml } from "./html.js";
import { TEXT, send } from "./reply.js";

const STATE_BADGE: Record<string, string> = { active: "info", paused: "warn", completed: "ok", aborted: "bad", superseded: "" };
/** A form body here is three short fields. */

function stepList(s: RolloutSummary): SafeHtml {
  const steps = s.steps.split(",").map((t) => t.trim());
  return html`<ol class="steps">${steps.map((t, i) =>
    i + 1 === s.step ? html`<li><strong>${t}</strong></li>` : html`<li class="${i + 1 < s.step ? "" : "muted"}">${t}</li>`,
  )}</ol>`;
}

function button(s: RolloutSummary, action: "pause" | "resume"): SafeHtml {
  return html`<form method="post" action="rollout"><input type="hidden" name="action" value="${action}"><input type="hidden" name="channel" value="${s.channel}"><input type="hidden" name="device" value="${s.device}"><button type="submit">${action === "pause" ? "Pause" : "Resume"}</button></form>`;
}

/** The rollout block of one device (its newest rollout). */
export function renderRollout(s: RolloutSummary): SafeHtml {
  const open = s.state === "active" || s.state === "paused";
  return html`<div class="rollout" id="rollout-${s.channel}-${s.device}"><p><strong>Staged rollout</strong> of version ${s.version}:
<span class="badge ${STATE_BADGE[s.state] ?? ""}">${s.state}</span> at ${s.percentage} % (step ${s.step})${
    s.next_step_at ? html` · next step <time datetime="${s.next_step_at}">${s.next_step_at.slice(0, 16).replace("T", " ")}</time>` : ""
  }${s.paused_hours > 0 ? html` · paused ${s.paused_hours} h in all` : ""}</p>
${s.reason ? html`<p class="${s.state === "paused" || s.state === "aborted" ? "error" : "muted"}">${s.state === "paused" ? "Paused: " : ""}${s.reason}</p>` : ""}
${stepList(s)}<p class="muted">Pauses itself when under ${s.floor} % of at least ${s.min_downloads} downloads complete, ${s.grace_hours} h after a step.</p>
${open ? button(s, s.state === "active" ? "pause" : "resume") : ""}</div>`;
}

/**
 * `POST /rollout` (action=pause|resume, channel, device): the dashboard's buttons. Answers
 * 303 back to the page, 400 for a bad form, 409 when the rollout cannot change that way.
 */
export async function handleRolloutPost(
  req: IncomingMessage,
  res: ServerResponse,
  deps: { config: Config; now?: () => Date },
): Promise<number> {
  if (req.method !== "POST") return send(req, res, 405, TEXT, "Use POST\n", { Allow: "POST" });
  if (!sameOrigin(req)) return send(req, res, 403, TEXT, "Cross-origin request refused\n");
  const form = await readForm(req);
  const action = form?.get("action");
  const channel = form?.get("channel");
  const device = form?.get("device");
  if (!form || (action !== "pause" && action !== "resume") || !channel || !device)
    return send(req, res, 400, TEXT, "Bad Request: expected a form with action=pause|resume, channel and device\n", {
      Connection: "close",
    });
  const ctx = { config: deps.config, now: deps.now, lockWaitMs: 10_000 };
  try {
    if (action === "pause") await pauseRollout(ctx, channel, device, "paused from the dashboard");
    else await resumeRollout(ctx, channel, device);
  } catch (err) {
    if (!(err instanceof SiError)) throw err;
    return send(req, res, 409, TEXT, `${errorMessage(err)}\n`);
  }
  return send(req, res, 303, TEXT, `Rollout ${action}d\n`, { Location: "./#channels" });
}
