/* BONSAI pages: live jobs (SSE), loss curves (uPlot) and the chat (the server's own
   OpenAI-compatible API, streamed). No framework; htmx does the rest. Text from the server is
   always put in with textContent, never as markup. */
"use strict";

function csrf() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

/* ---- loss curves ------------------------------------------------------------------------ */

const PALETTE = ["#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#827717", "#4e342e",
  "#283593", "#5d4037", "#00695c"];

function Curves(container) {
  this.container = container;
  this.entries = [];
  this.plot = null;
  this.key = "";
  this.pending = false;
  this.perCategory = "by_category";
  // A choice above the chart: per-category curves of validation loss, of training loss, or none.
  const choice = el("select", "curve-choice");
  choice.setAttribute("aria-label", "per-category curves");
  for (const [value, label] of [["by_category", "per category: validation loss"],
    ["train_by_category", "per category: training loss"], ["", "per category: none"]]) {
    const option = el("option", null, label);
    option.value = value;
    choice.append(option);
  }
  choice.addEventListener("change", () => { this.perCategory = choice.value; this.draw(); });
  this.chart = el("div", "chart-area");
  container.append(choice, this.chart);
}

Curves.prototype.add = function (entries) {
  for (const e of entries) {
    if (e.kind === "train" || e.kind === "val") this.entries.push(e);
  }
  if (!this.pending) {
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }
};

Curves.prototype.data = function () {
  // Keep the last entry per (kind, step): a resumed run logs some steps again.
  const train = new Map(), val = new Map(), cats = new Map();
  for (const e of this.entries) {
    if (e.kind === "train") train.set(e.step, e.loss);
    if (e.kind === "val") {
      val.set(e.step, e.loss);
      for (const [c, v] of Object.entries((this.perCategory && e[this.perCategory]) || {})) {
        if (!cats.has(c)) cats.set(c, new Map());
        cats.get(c).set(e.step, v);
      }
    }
  }
  const steps = [...new Set([...train.keys(), ...val.keys()])].sort((a, b) => a - b);
  const names = [...cats.keys()].sort();
  const pick = (m) => steps.map((s) => (m.has(s) && Number.isFinite(m.get(s)) ? m.get(s) : null));
  return { steps, names, columns: [steps, pick(train), pick(val), ...names.map((n) => pick(cats.get(n)))] };
};

Curves.prototype.draw = function () {
  if (typeof uPlot === "undefined") { setTimeout(() => this.draw(), 100); return; }
  const d = this.data();
  if (!d.steps.length) {
    this.chart.textContent = "No loss logged yet: the curves appear after the first steps.";
    return;
  }
  const key = this.perCategory + ":" + d.names.join("|");
  const width = Math.max(320, this.container.clientWidth || 600);
  if (!this.plot || key !== this.key) {
    this.chart.textContent = "";
    if (this.plot) this.plot.destroy();
    const kind = this.perCategory === "train_by_category" ? "train · " : "val · ";
    const series = [
      { label: "step" },
      { label: "train", stroke: "#2e7d32", width: 1.5, spanGaps: true },
      { label: "validation", stroke: "#c62828", width: 2.5, spanGaps: true, points: { show: true, size: 6 } },
    ];
    d.names.forEach((n, i) => series.push({
      label: kind + n, stroke: PALETTE[i % PALETTE.length], width: 1.2, dash: [6, 4],
      spanGaps: true, points: { show: true, size: 4 },
    }));
    this.plot = new uPlot({
      width: width, height: 300, series: series,
      scales: { x: { time: false } },
      axes: [{ label: "step", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] },
        { label: "loss" }],
      legend: { live: true },
    }, d.columns, this.chart);
    this.key = key;
  } else {
    this.plot.setData(d.columns);
  }
  this.container.dataset.points = String(d.steps.length);
};

/* ---- a job's page ----------------------------------------------------------------------- */

function jobPage(root) {
  const id = root.dataset.job;
  const kind = root.dataset.kind;
  const logEl = document.getElementById("job-log");
  const curvesEl = document.getElementById("curves");
  const curves = curvesEl ? new Curves(curvesEl) : null;
  let source = null;

  function showJob(job) {
    const state = document.getElementById("job-state");
    state.textContent = job.state;
    state.className = "state " + job.state;
    const p = job.progress || {};
    const bar = document.getElementById("job-progress");
    const text = document.getElementById("job-progress-text");
    if (p.total) {
      bar.max = p.total; bar.value = p.done || 0;
      text.textContent = (p.message ? p.message + " · " : "") + (p.done || 0) + " of " + p.total +
        (p.failed ? " · " + p.failed + " failed" : "");
    } else if (p.done) {
      bar.removeAttribute("value");
      text.textContent = "step " + p.done;
    } else if (job.state === "queued") {
      text.textContent = "waiting for the worker";
    }
    const err = document.getElementById("job-error");
    err.textContent = job.error || "";
    err.classList.toggle("hidden", !job.error);
    const active = job.state === "queued" || job.state === "running";
    document.getElementById("job-stop").hidden = !active;
    document.getElementById("job-retry").hidden = active || job.state === "finished" && kind !== "teach";
    const run = p.run || (job.result || {}).run || (job.result || {}).new_run;
    if (run) {
      const link = document.getElementById("job-run-link");
      link.href = "/runs/" + encodeURIComponent(run);
      link.textContent = "Open run " + run;
      link.classList.remove("hidden");
    }
    const report = (job.result || {}).report;
    if (report) {
      const link = document.getElementById("job-report-link");
      link.href = "/files?path=" + encodeURIComponent(report);
      link.classList.remove("hidden");
    }
    if (kind === "teach" && job.result && job.result.failed) showFailures(job.result.failed);
    if (kind === "grow" && job.result && job.result.status) showGrow(job.result);
    if (!active && !job.finished_shown) {
      document.body.dataset.jobDone = job.state;
    }
  }

  function showFailures(failed) {
    const box = document.getElementById("teach-failures");
    box.textContent = "";
    if (!failed.length) { box.textContent = "None."; return; }
    const list = el("ul");
    for (const f of failed) {
      const li = el("li");
      li.append(el("code", null, f.record_id), document.createTextNode(": " + f.reason +
        " (" + f.attempts + " attempts) "));
      const a = el("a", null, "edit");
      a.href = "/records?q=" + encodeURIComponent(f.record_id);
      li.append(a);
      list.append(li);
    }
    box.append(list);
  }

  function showGrow(result) {
    const card = document.getElementById("grow-result");
    if (!card) return;
    card.classList.remove("hidden");
    const box = document.getElementById("grow-table");
    box.textContent = "";
    box.append(el("p", "grow-message", result.message));
    const cmp = result.comparison;
    if (cmp) {
      const table = el("table", "compare");
      const head = el("tr");
      for (const h of ["category", "metric", "before", "after", "Δ"]) head.append(el("th", null, h));
      table.append(head);
      const fmt = (v, d) => (v === null || v === undefined ? "–" : Number(v).toFixed(d || 3));
      const row = (cells) => { const tr = el("tr"); cells.forEach((c) => tr.append(el("td", null, c))); table.append(tr); };
      row(["all", "validation loss", fmt(cmp.val_loss_before, 4), fmt(cmp.val_loss_after, 4), ""]);
      for (const c of cmp.categories || []) {
        row([c.category, c.metric, fmt(c.before), fmt(c.after), c.delta === null ? "–" : (c.delta > 0 ? "+" : "") + fmt(c.delta)]);
      }
      box.append(table);
    }
    const actions = document.getElementById("grow-actions");
    actions.textContent = "";
    if (result.new_run && result.status === "kept") {
      actions.append(promoteButton(result.new_run, "Promote " + result.new_run + " anyway"));
    } else if (result.new_run && result.status === "promoted" && result.current_run !== "base") {
      actions.append(promoteButton(result.current_run, "Keep " + result.current_run + " instead"));
    }
  }

  function promoteButton(run, label) {
    const b = el("button", "button", label);
    b.type = "button";
    b.addEventListener("click", async () => {
      const r = await fetch("/runs/" + encodeURIComponent(run) + "/promote", {
        method: "POST", headers: { "X-CSRF-Token": csrf() },
      });
      document.getElementById("flash").textContent = r.ok ? run + " is promoted." : "Promotion refused.";
    });
    return b;
  }

  function connect() {
    source = new EventSource("/jobs/" + id + "/events");
    source.addEventListener("job", (e) => showJob(JSON.parse(e.data)));
    source.addEventListener("log", (e) => {
      const atEnd = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 4;
      logEl.append(document.createTextNode(JSON.parse(e.data).text));
      if (atEnd) logEl.scrollTop = logEl.scrollHeight;
    });
    source.addEventListener("metric", (e) => { if (curves) curves.add(JSON.parse(e.data).entries); });
    source.addEventListener("end", () => { source.close(); document.body.dataset.jobDone = "1"; });
  }
  showJob(JSON.parse(document.getElementById("job-data").textContent));
  connect();
}

/* ---- a run's page ----------------------------------------------------------------------- */

async function runCurves(container) {
  const curves = new Curves(container);
  const r = await fetch("/runs/" + encodeURIComponent(container.dataset.run) + "/metrics");
  if (r.ok) curves.add((await r.json()).entries);
}

/* ---- chat ------------------------------------------------------------------------------- */

function chatPage(root) {
  const messages = document.getElementById("messages");
  const form = document.getElementById("ask");
  const question = document.getElementById("question");
  const stopButton = document.getElementById("stop");
  const sendButton = document.getElementById("send");
  const status = document.getElementById("chat-status");
  const session = root.dataset.session;
  const history = [];
  let controller = null;

  for (const bot of messages.querySelectorAll(".msg-bot")) {
    const user = bot.previousElementSibling;
    history.push({ role: "user", content: user.textContent });
    history.push({ role: "assistant", content: bot.querySelector(".answer").textContent });
    addFeedback(bot, bot.dataset.turn);
  }
  messages.scrollTop = messages.scrollHeight;

  question.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  stopButton.addEventListener("click", () => { if (controller) controller.abort(); });
  form.addEventListener("submit", (e) => { e.preventDefault(); ask(); });

  async function ask() {
    const text = question.value.trim();
    if (!text || controller) return;
    question.value = "";
    messages.append(el("div", "msg-user", text));
    const bot = el("div", "msg-bot streaming");
    const details = el("details", "reasoning hidden");
    details.append(el("summary", null, "Reasoning"));
    const reasoning = el("div", "pre");
    details.append(reasoning);
    const answer = el("div", "answer pre");
    answer.append(el("span", "muted", "…"));
    bot.append(details, answer);
    messages.append(bot);
    messages.scrollTop = messages.scrollHeight;
    controller = new AbortController();
    stopButton.classList.remove("hidden");
    sendButton.disabled = true;
    status.textContent = "thinking…";
    const started = performance.now();
    let first = true, extra = null, answerText = "";
    try {
      const response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        signal: controller.signal,
        body: JSON.stringify({
          model: "bonsai", stream: true, session: session,
          mode: document.getElementById("mode").value,
          rag: document.getElementById("rag").checked,
          messages: [...history, { role: "user", content: text }],
        }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error((body.error && body.error.message) || response.statusText);
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let at;
        while ((at = buffer.indexOf("\n\n")) >= 0) {
          const event = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          for (const line of event.split("\n")) {
            if (!line.startsWith("data: ")) continue;
            const data = line.slice(6);
            if (data === "[DONE]") continue;
            const chunk = JSON.parse(data);
            if (chunk.error) throw new Error(chunk.error.message);
            if (chunk.bonsai) extra = chunk.bonsai;
            const delta = (chunk.choices && chunk.choices[0] && chunk.choices[0].delta) || {};
            if ((delta.reasoning_content || delta.content) && !bot.dataset.firstTokenMs) {
              bot.dataset.firstTokenMs = String(Math.round(performance.now() - started));
              status.textContent = "first token after " + (bot.dataset.firstTokenMs / 1000).toFixed(2) + " s";
            }
            if (delta.reasoning_content) {
              details.classList.remove("hidden");
              reasoning.append(document.createTextNode(delta.reasoning_content));
            }
            if (delta.content) {
              if (first) {
                first = false;
                answer.textContent = "";
              }
              answerText += delta.content;
              answer.append(document.createTextNode(delta.content));
              messages.scrollTop = messages.scrollHeight;
            }
          }
        }
      }
    } catch (err) {
      if (err.name === "AbortError") {
        answer.append(el("span", "muted small", " (stopped)"));
      } else {
        answer.textContent = "";
        answer.append(el("span", "msg error inline", "Error: " + err.message));
      }
    } finally {
      controller = null;
      stopButton.classList.add("hidden");
      sendButton.disabled = false;
      bot.classList.remove("streaming");
      if (first && !answer.querySelector(".error")) {
        answer.textContent = "";
        if (!answerText) answer.append(el("span", "muted small", reasoning.textContent
          ? "(no answer after the reasoning: open it above)" : "(no answer)"));
      }
    }
    history.push({ role: "user", content: text }, { role: "assistant", content: answerText });
    if (extra) {
      bot.dataset.turn = extra.turn_id;
      if (extra.sources && extra.sources.length) {
        const box = el("div", "sources");
        box.append(el("span", "label", "Sources"));
        for (const s of extra.sources) {
          const a = el("a", null, s.citation || s.source);
          a.href = "/notes/view?source=" + encodeURIComponent(s.source) + "&chunk=" + s.chunk_id + "#chunk-" + s.chunk_id;
          a.target = "_blank";
          box.append(a);
        }
        bot.append(box);
      }
      bot.append(el("div", "turn-meta muted small", extra.mode + " · " + extra.run));
      addFeedback(bot, extra.turn_id);
      listConversation(text);
      if (!status.textContent.startsWith("first token")) status.textContent = "model: " + extra.run;
    }
  }

  function listConversation(firstQuestion) {
    // A new conversation joins the list on its first answer (a link back to it).
    const list = document.querySelector(".sessions");
    if (!list || list.querySelector("a.on")) return;
    const empty = list.querySelector("li.muted");
    if (empty) empty.remove();
    const item = el("li");
    const link = el("a", "on", firstQuestion.length > 40 ? firstQuestion.slice(0, 39) + "…" : firstQuestion);
    link.href = "/chat?session=" + encodeURIComponent(session);
    item.append(link);
    list.prepend(item);
  }

  function addFeedback(bot, turnId) {
    if (!turnId) return;
    const tools = document.getElementById("fb-template").content.cloneNode(true);
    const box = el("div", "fb-tools");
    box.append(tools);
    const old = bot.querySelector(".fb-tools");
    if (old) old.replaceWith(box); else bot.append(box);
    const done = box.querySelector(".fb-done");
    box.querySelectorAll("[data-act]").forEach((b) => b.addEventListener("click", () => {
      box.querySelectorAll(".fb-panel").forEach((p) => p.classList.toggle("hidden", p.dataset.panel !== b.dataset.act || !p.classList.contains("hidden")));
    }));
    box.querySelectorAll(".chip").forEach((c) => c.addEventListener("click", () => {
      c.classList.toggle("on");
    }));
    box.querySelectorAll("[data-send]").forEach((b) => b.addEventListener("click", async () => {
      const panel = b.closest(".fb-panel");
      const kind = b.dataset.send;
      const chips = [...panel.querySelectorAll(".chip.on")].map((c) => c.dataset.reason);
      const typed = panel.querySelector(".reason") ? panel.querySelector(".reason").value.trim() : "";
      const body = { kind: kind, turn_id: turnId };
      if (kind === "good" || kind === "bad") body.reason = [...chips, typed].filter(Boolean).join("; ");
      else body.text = panel.querySelector(".text").value;
      const r = await fetch("/v1/feedback", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const data = await r.json().catch(() => ({}));
      if (r.ok) {
        panel.classList.add("hidden");
        done.textContent = "Saved (" + kind + ", feedback " + data.id + "). The next grow uses it.";
        done.className = "fb-done small ok";
      } else {
        done.textContent = (data.error && data.error.message) || "not saved";
        done.className = "fb-done small error";
      }
    }));
  }
}

/* ---- start ------------------------------------------------------------------------------ */

document.addEventListener("DOMContentLoaded", () => {
  const job = document.getElementById("job");
  if (job) jobPage(job);
  const chat = document.getElementById("chat");
  if (chat) chatPage(chat);
  const curves = document.querySelector("#curves[data-run]");
  if (curves) runCurves(curves);
});
