// nbcellar ui: the pages' behaviour (plain ES module, no framework; data from /api/...).
const init = JSON.parse(document.body.dataset.init || "{}");
const $ = (selector) => document.querySelector(selector);
const text = (value) => (value === null || value === undefined ? "" : String(value));

function shown(value) {
  if (typeof value === "number") {
    return Number.isInteger(value) ? String(value) : value.toPrecision(6).replace(/\.?0+$/, "");
  }
  if (value !== null && typeof value === "object") {
    // A value kept by its kind alone (a dict, a frame: shown in full in its own section).
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "type") return `<${value.type}>`;
    return JSON.stringify(value);
  }
  return text(value);
}

function when(seconds) {
  if (!seconds) return "";
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function cell(tag, content, className) {
  const element = document.createElement(tag);
  element.textContent = content;
  if (className) element.className = className;
  return element;
}

async function getJSON(url) {
  const response = await fetch(url);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

// -- the runs table -----------------------------------------------------------------------

const table = { sort: "created", order: "desc", offset: 0, limit: 50, columns: null, data: null };
const selected = new Set();

function showSelection() {
  const button = $("#compare");
  button.disabled = selected.size < 2;
  button.textContent = `compare ${selected.size || ""} selected`.replace("  ", " ");
}

async function loadRuns() {
  const query = new URLSearchParams({
    where: $("#where").value, status: $("#status").value, sort: table.sort,
    order: table.order, offset: table.offset, limit: table.limit,
  });
  if (table.columns) query.set("columns", table.columns.join(","));
  const problem = $("#problem");
  try {
    table.data = await getJSON(`/api/runs?${query}`);
    problem.hidden = true;
  } catch (failure) {
    problem.textContent = failure.message;
    problem.hidden = false;
    return;
  }
  drawRuns();
}

function drawRuns() {
  const data = table.data;
  const onlyDiffer = $("#differ").checked;
  const params = new Set(data.runs.flatMap((r) => Object.keys(r.params)));
  const columns = data.columns.filter((c) => !onlyDiffer || !params.has(c) || data.differ.includes(c));
  const head = document.createElement("tr");
  head.append(cell("th", ""));
  const fixed = [["id", "run"], ["notebook", "notebook"], ["status", "status"], ["created", "created"], ["seconds", "seconds"]];
  for (const [key, label] of fixed) head.append(header(key, label, key !== "seconds"));
  head.append(cell("th", "ran/restored"));
  for (const key of columns) head.append(header(key, key, false, params.has(key) ? "param" : ""));
  $("#runs thead").replaceChildren(head);
  const rows = data.runs.map((run) => {
    const row = document.createElement("tr");
    const pick = document.createElement("input");
    pick.type = "checkbox";
    pick.className = "pick";
    pick.checked = selected.has(run.id);
    pick.addEventListener("change", () => {
      if (pick.checked) selected.add(run.id); else selected.delete(run.id);
      showSelection();
    });
    const first_ = cell("td", "");
    first_.append(pick);
    row.append(first_);
    const link = document.createElement("a");
    link.href = `/runs/${encodeURIComponent(run.id)}`;
    link.textContent = run.id;
    const first = cell("td", "", "text");
    first.append(link);
    row.append(first, cell("td", run.notebook.split("/").pop(), "text"));
    const status = cell("td", run.status, `text status ${run.status}`);
    if (run.error) status.title = run.error;
    row.append(status, cell("td", when(run.created), "text"), cell("td", shown(run.seconds)));
    row.append(cell("td", run.total === null ? "" : `${run.ran}/${run.restored}`));
    for (const key of columns) {
      const value = key in run.params ? run.params[key] : run.values[key];
      const td = cell("td", shown(value), typeof value === "number" ? "" : "text long");
      if (td.textContent.length > 40) td.title = td.textContent; // (cut short in the row)
      row.append(td);
    }
    return row;
  });
  $("#runs tbody").replaceChildren(...rows);
  const last = Math.min(data.offset + data.runs.length, data.total);
  $("#count").textContent = `${data.total} runs`;
  $("#at").textContent = data.total ? `${data.offset + 1}–${last} of ${data.total}` : "no runs match";
  $("#prev").disabled = data.offset === 0;
  $("#next").disabled = last >= data.total;
}

function header(key, label, textual, className = "") {
  const th = cell("th", label, `${className} ${textual ? "text" : ""}`.trim());
  th.dataset.key = key;
  if (table.sort === key) th.classList.add("sorted", table.order);
  th.addEventListener("click", () => {
    table.order = table.sort === key && table.order === "desc" ? "asc" : "desc";
    table.sort = key;
    table.offset = 0;
    loadRuns();
  });
  return th;
}

async function chooseColumns() {
  const chooser = $("#chooser");
  if (!chooser.hidden) { chooser.hidden = true; return; }
  const { keys } = await getJSON("/api/keys");
  const chosen = new Set(table.columns || table.data.columns);
  chooser.replaceChildren(...keys.map(({ key, runs, params }) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = chosen.has(key);
    box.value = key;
    box.addEventListener("change", () => {
      table.columns = [...chooser.querySelectorAll("input:checked")].map((b) => b.value);
      loadRuns();
    });
    label.append(box, ` ${key} `, cell("small", `(${params ? "param, " : ""}${runs} runs)`));
    return label;
  }));
  chooser.hidden = false;
}

function runsPage() {
  let typing;
  $("#where").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { table.offset = 0; loadRuns(); }, 250);
  });
  $("#status").addEventListener("change", () => { table.offset = 0; loadRuns(); });
  $("#differ").addEventListener("change", drawRuns);
  $("#choose").addEventListener("click", chooseColumns);
  $("#compare").addEventListener("click", () => {
    location.href = `/compare?runs=${[...selected].map(encodeURIComponent).join(",")}`;
  });
  showSelection();
  $("#prev").addEventListener("click", () => { table.offset = Math.max(0, table.offset - table.limit); loadRuns(); });
  $("#next").addEventListener("click", () => { table.offset += table.limit; loadRuns(); });
  loadRuns();
}

// -- one run ------------------------------------------------------------------------------

function facts(title, mapping) {
  const section = document.createElement("section");
  section.append(cell("h2", title));
  const list = document.createElement("dl");
  list.className = "facts";
  // (What a run does not have, an error or a worker, is left out rather than shown blank.)
  const entries = Object.entries(mapping || {}).filter(([, value]) => value !== null && value !== undefined && value !== "");
  if (!entries.length) section.append(cell("p", "none"));
  for (const [key, value] of entries) list.append(cell("dt", key), cell("dd", shown(value)));
  section.append(list);
  return section;
}

async function runPage() {
  // (Logged tables, dicts and figures are drawn as the compare page draws them: a compare of
  // this run alone; without it the plain values still show.)
  const [run, compared] = await Promise.all([
    getJSON(`/api/runs/${encodeURIComponent(init.run)}`),
    getJSON(`/api/compare?runs=${encodeURIComponent(init.run)}`).catch(() => ({ sections: [] })),
  ]);
  const place = $("#run");
  const cells = run.cells || {};
  place.append(facts("Run", {
    notebook: run.notebook, created: when(run.created), seconds: run.seconds,
    cells: cells.total === undefined ? "" : `${cells.total} (${cells.ran} ran, ${cells.restored} restored)`,
    error: run.error, worker: run.worker, grid: run.grid,
    smoke: run.smoke ? "a smoke test's run (smoke-parameters as its parameters)" : "",
  }));
  const sections = compared.sections;
  const plain = { ...(run.values || {}) };
  for (const { key } of sections) delete plain[key];
  place.append(facts("Parameters", run.params));
  if (Object.keys(plain).length || !sections.length) place.append(facts("Logged values", plain));
  for (const { key, html } of sections) {
    const part = document.createElement("section");
    part.className = "logged";
    part.append(cell("h2", key));
    const holder = document.createElement("div");
    holder.innerHTML = html; // made by the server: sandboxed frames, tables rebuilt from their tags
    part.append(holder);
    place.append(part);
  }
  if (run.artifacts && run.artifacts.length) {
    const section = document.createElement("section");
    section.append(cell("h2", "Artifacts"));
    const list = document.createElement("ul");
    for (const path of run.artifacts) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = `/runs/${encodeURIComponent(run.id)}/artifacts/${path.split("/").map(encodeURIComponent).join("/")}`;
      link.textContent = path;
      link.download = path.split("/").pop();
      item.append(link);
      list.append(item);
    }
    section.append(list);
    place.append(section);
  }
  if (run.sources && run.sources.length) {
    const section = document.createElement("section");
    section.append(cell("h2", "Source files kept with the run"));
    const list = document.createElement("ul");
    for (const path of run.sources) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = `/runs/${encodeURIComponent(run.id)}/source/${path.split("/").map(encodeURIComponent).join("/")}`;
      link.textContent = path;
      item.append(link);
      list.append(item);
    }
    section.append(list);
    place.append(section);
  }
  if (run.checkpoints && run.checkpoints.length) drawCheckpoints(place, run);
  place.append(facts("Source", run.source), facts("Environment", run.environment));
}

function drawCheckpoints(place, run) {
  // The run's checkpoints: a row per step with its metrics, then each analysis over them.
  const section = document.createElement("section");
  section.id = "checkpoints";
  section.append(cell("h2", `Checkpoints (${run.checkpoints.length})`));
  const metrics = [...new Set(run.checkpoints.flatMap((c) => Object.keys(c.metrics)))];
  const table = document.createElement("table");
  const head = document.createElement("tr");
  for (const name of ["step", "time", ...metrics, "state kept"]) head.append(cell("th", name));
  table.append(head);
  for (const c of run.checkpoints) {
    const row = document.createElement("tr");
    row.append(cell("td", shown(c.step)), cell("td", when(c.time)));
    for (const name of metrics) row.append(cell("td", shown(c.metrics[name])));
    row.append(cell("td", c.names.join(", "), "text"));
    table.append(row);
  }
  section.append(table);
  for (const { function: digest, rows } of run.analyses || []) {
    const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    const analysis = document.createElement("table");
    analysis.className = "analysis";
    const top = document.createElement("tr");
    for (const name of columns) top.append(cell("th", name));
    analysis.append(top);
    for (const r of rows.sort((a, b) => (a.step > b.step ? 1 : -1))) {
      const row = document.createElement("tr");
      for (const name of columns) row.append(cell("td", shown(r[name])));
      analysis.append(row);
    }
    section.append(cell("h3", `analysis ${digest.slice(0, 8)}`), analysis);
  }
  place.append(section);
}

// -- selected runs compared ---------------------------------------------------------------

function chart(title) {
  const box = document.createElement("div");
  box.className = "chart";
  const section = document.createElement("section");
  section.append(cell("h2", title), box);
  $("#compare").append(section);
  return echarts.init(box);
}

async function comparePage() {
  let data;
  try {
    data = await getJSON(`/api/compare?runs=${init.runs.map(encodeURIComponent).join(",")}`);
  } catch (failure) {
    $("#problem").textContent = failure.message;
    $("#problem").hidden = false;
    return;
  }
  const place = $("#compare");
  const scalars = document.createElement("table");
  scalars.id = "scalars";
  const head = document.createElement("tr");
  head.append(cell("th", ""));
  for (const run of data.runs) {
    const th = cell("th", "");
    const link = document.createElement("a");
    link.href = `/runs/${encodeURIComponent(run.id)}`;
    link.textContent = run.label;
    link.title = run.id;
    th.append(link);
    head.append(th);
  }
  const body = document.createElement("tbody");
  for (const name of data.varied) {
    const row = document.createElement("tr");
    row.append(cell("th", name, "text param"));
    for (const run of data.runs) row.append(cell("td", shown(run.params[name])));
    body.append(row);
  }
  for (const { key, values, best, lower_is_better } of data.scalars) {
    const row = document.createElement("tr");
    const name = cell("th", key, "text");
    name.title = best.length ? `best: ${lower_is_better ? "lowest" : "highest"}` : "";
    row.append(name);
    values.forEach((value, i) => row.append(cell("td", shown(value), best.includes(i) ? "best" : "")));
    body.append(row);
  }
  const thead = document.createElement("thead");
  thead.append(head);
  scalars.append(thead, body);
  const section = document.createElement("section");
  section.append(cell("h2", `${data.runs.length} runs`), scalars,
    cell("p", "best of each row highlighted: lowest for losses, errors and times, highest otherwise", "note"));
  place.append(section);
  for (const { key, series } of data.histories) {
    chart(`${key} per step`).setOption({
      animation: false, tooltip: { trigger: "axis" }, legend: { type: "scroll", bottom: 0 },
      grid: { left: 60, right: 20, top: 20, bottom: 60 },
      xAxis: { type: "value", name: "step", minInterval: 1, min: "dataMin", max: "dataMax" }, yAxis: { type: "value", scale: true, name: key },
      dataZoom: [{ type: "inside" }],
      series: series.map((s) => ({ name: s.label, type: "line", showSymbol: false, sampling: "lttb", data: s.points })),
    });
  }
  const { params, metrics, rows } = data.parallel;
  if (params.length && metrics.length && rows.length > 1) drawParallel(data, params, metrics, rows);
  if (data.diff) drawDiff(place, data.diff, data.runs);
  for (const { key, html } of data.sections) {
    const part = document.createElement("section");
    part.append(cell("h2", key));
    const holder = document.createElement("div");
    holder.innerHTML = html; // made by the server: sandboxed frames, tables rebuilt from their tags
    part.append(holder);
    place.append(part);
  }
}

function drawParallel(data, params, metrics, rows) {
  // Parameters -> one metric chosen in the menu (the last by default), coloured by it. Brushing
  // an axis keeps the runs inside: their columns of the table above stay lit, the others dim.
  const section = document.createElement("section");
  const menu = document.createElement("select");
  menu.id = "parallel-metric";
  for (const name of metrics) menu.append(new Option(name, name));
  menu.value = metrics[metrics.length - 1];
  const box = document.createElement("div");
  box.className = "chart";
  const title = cell("h2", "parameters → ");
  title.append(menu);
  section.append(title, box, cell("p", "drag along an axis to keep the runs in a range; their columns above stay lit", "note"));
  $("#compare").append(section);
  const plot = echarts.init(box);
  const draw = () => {
    const metric = metrics.indexOf(menu.value);
    const picked = rows.map((r) => [...r.slice(0, params.length), r[params.length + metric]]);
    const names = [...params, menu.value];
    const axes = names.map((name, dim) => {
      const numeric = picked.every((r) => typeof r[dim] === "number" || r[dim] === null);
      const axis = { id: `axis-${dim}`, dim, name };
      return numeric ? { ...axis, scale: true } : { ...axis, type: "category", data: [...new Set(picked.map((r) => String(r[dim])))] };
    });
    const values = picked.map((r) => r[params.length]).filter((v) => typeof v === "number");
    plot.setOption({
      animation: false, parallelAxis: axes, parallel: { left: 60, right: 80, bottom: 30, top: 40 },
      visualMap: values.length ? { show: true, dimension: params.length, min: Math.min(...values), max: Math.max(...values),
        right: 0, top: 40, inRange: { color: ["#50a3ba", "#eac736", "#d94e5d"] } } : undefined,
      series: [{ type: "parallel", lineStyle: { width: 2, opacity: 0.7 }, inactiveOpacity: 0.05,
        data: picked.map((r) => r.map((v, dim) => (axes[dim].type === "category" ? String(v) : v))) }],
    }, true);
    lightColumns(null);
  };
  plot.on("axisareaselected", () => {
    const kept = plot.getModel().getSeries()[0].getRawIndicesByActiveState("active");
    lightColumns(kept.length === rows.length ? null : new Set(kept));
  });
  menu.addEventListener("change", draw);
  draw();
}

function lightColumns(kept) {
  // The scalars table: dim the columns of the runs a brush left out (null: none left out).
  for (const row of document.querySelectorAll("#scalars tr")) {
    [...row.children].slice(1).forEach((td, i) => td.classList.toggle("dimmed", kept !== null && !kept.has(i)));
  }
}

function drawDiff(place, diff, runs) {
  // Two runs: what differs, as `nbcellar diff` shows it (source and outputs as unified diffs).
  const part = document.createElement("section");
  part.id = "diff";
  part.append(cell("h2", "what differs"));
  if (diff.same) part.append(cell("p", "no differences", "note"));
  const changes = [...diff.params.map((c) => ["param", c]), ...diff.values.map((c) => ["logged", c]),
    ...[diff.status, diff.notebook, diff.git].filter(Boolean).map((c) => ["", c])];
  if (changes.length) {
    const table = document.createElement("table");
    const head = document.createElement("tr");
    head.append(cell("th", ""), cell("th", `a: ${runs[0].label}`), cell("th", `b: ${runs[1].label}`));
    table.append(head);
    for (const [kind, c] of changes) {
      const row = document.createElement("tr");
      row.append(cell("th", kind ? `${c.name} (${kind})` : c.name, "text"),
        cell("td", c.before === null ? "(none)" : shown(c.before), "removed"),
        cell("td", c.after === null ? "(none)" : shown(c.after), "added"));
      table.append(row);
    }
    part.append(table);
  }
  for (const [title, lines] of [["source", diff.source], ["outputs", diff.outputs]]) {
    if (!lines.length) continue;
    part.append(cell("h3", title));
    const pre = document.createElement("pre");
    pre.className = "diff";
    for (const line of lines) {
      const kind = line.startsWith("+++") || line.startsWith("---") ? "file"
        : line.startsWith("+") ? "added" : line.startsWith("-") ? "removed" : line.startsWith("@@") ? "hunk" : "";
      pre.append(cell("span", `${line}\n`, kind));
    }
    part.append(pre);
  }
  place.append(part);
}

// -- jobs, live ---------------------------------------------------------------------------

function seconds(value) {
  if (value === null || value === undefined) return "";
  const whole = Math.round(value);
  if (whole < 60) return `${whole} s`;
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${whole % 60} s`;
  return `${Math.floor(whole / 3600)} h ${Math.floor((whole % 3600) / 60)} min`;
}

async function cancelJob(id, button) {
  button.disabled = true;
  const response = await fetch(`/api/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST" });
  const answer = await response.json();
  if (!response.ok) {
    $("#problem").textContent = answer.error;
    $("#problem").hidden = false;
    button.disabled = false;
  }
}

function drawJobs(jobs) {
  const place = $("#jobs");
  if (!jobs.length) {
    place.replaceChildren(cell("p", "no launches recorded in this store yet"));
    return;
  }
  place.replaceChildren(...jobs.map((job) => {
    const section = document.createElement("section");
    section.className = "job";
    section.dataset.id = job.id;
    const counts = Object.entries(job.counts).map(([s, n]) => `${n} ${s}`).join(", ");
    const title = cell("h2", `${job.id} · ${job.notebook.split("/").pop()} · ${job.executor}`);
    section.append(title, cell("p", `${counts}; ${seconds(job.elapsed)}${job.ended ? "" : " so far"}`, "counts"));
    if (init.cancel && job.cancellable) {
      const button = cell("button", "cancel", "cancel");
      button.addEventListener("click", () => cancelJob(job.id, button));
      section.append(button);
    }
    const table = document.createElement("table");
    const head = document.createElement("tr");
    for (const name of ["run", "params", "status", "worker", "cell", "elapsed"]) head.append(cell("th", name, "text"));
    const body = document.createElement("tbody");
    for (const run of job.runs) {
      const row = document.createElement("tr");
      row.dataset.run = run.id;
      const link = document.createElement("a");
      link.href = `/runs/${encodeURIComponent(run.id)}`;
      link.textContent = run.id;
      const first = cell("td", "", "text");
      first.append(link);
      const status = cell("td", run.status + (run.attempts > 1 ? " (retried)" : ""), `text status ${run.status}`);
      if (run.error) status.title = run.error;
      row.append(first, cell("td", Object.entries(run.params).map(([k, v]) => `${k}=${shown(v)}`).join(", "), "text"),
        status, cell("td", text(run.worker), "text"), cell("td", run.cell ? `[${run.cell}]` : ""), cell("td", seconds(run.elapsed)));
      body.append(row);
    }
    const thead = document.createElement("thead");
    thead.append(head);
    table.append(thead, body);
    section.append(table);
    return section;
  }));
}

function jobsPage() {
  const events = new EventSource("/api/jobs/events");
  events.onopen = () => { $("#live").textContent = "live: updated as the store changes"; };
  events.onmessage = (message) => drawJobs(JSON.parse(message.data).jobs);
  events.onerror = () => { $("#live").textContent = "connection lost: retrying…"; };
}

// -- the project's pipeline -----------------------------------------------------------------

async function pipelinePage() {
  const data = await getJSON("/api/pipeline");
  const place = $("#pipeline");
  if (data.error) {
    // (Not an error of the page: the project has no pipeline, or one declared wrongly.)
    place.replaceChildren(cell("p", data.error, "note"));
    return;
  }
  const drawing = document.createElement("div");
  drawing.className = "dag";
  drawing.innerHTML = data.svg; // drawn by the server from the task names, escaped there
  const table = document.createElement("table");
  table.id = "tasks";
  const head = document.createElement("tr");
  for (const name of ["task", "needs", "a build would", "why"]) head.append(cell("th", name, "text"));
  const body = document.createElement("tbody");
  for (const task of data.tasks) {
    const row = document.createElement("tr");
    row.dataset.task = task.task;
    const state = task.status === "would run" ? "running" : task.status === "up to date" ? "ok" : "failed";
    row.append(cell("td", task.task, "text"), cell("td", task.upstream.join(", "), "text"),
      cell("td", task.status, `text status ${state}`), cell("td", task.why, "text"));
    body.append(row);
  }
  const thead = document.createElement("thead");
  thead.append(head);
  table.append(thead, body);
  place.replaceChildren(cell("p", data.project, "note"), drawing, table);
}

// -- the cell cache -----------------------------------------------------------------------

function size(bytes) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return `${value.toFixed(unit && value < 10 ? 1 : 0)} ${units[unit]}`;
}

async function cachePage() {
  const place = $("#cache");
  let data;
  try {
    data = await getJSON("/api/cache");
  } catch (failure) {
    place.replaceChildren(cell("p", failure.message, "problem"));
    return;
  }
  const summary = cell("p", `${data.entries} entries, ${size(data.bytes)}; ${data.hits} cells restored ` +
    `in recorded runs, ${seconds(data.saved_seconds)} saved`, "summary");
  summary.id = "cache-summary";
  const table = document.createElement("table");
  table.id = "cache-notebooks";
  const head = document.createElement("tr");
  for (const name of ["notebook", "runs", "entries", "size", "hits", "time saved"]) head.append(cell("th", name));
  table.append(head);
  for (const n of data.notebooks) {
    const row = document.createElement("tr");
    row.append(cell("td", n.notebook, "text"), cell("td", n.runs), cell("td", n.entries), cell("td", size(n.bytes)),
      cell("td", n.hits), cell("td", seconds(n.saved_seconds)));
    table.append(row);
  }
  const prune = document.createElement("table");
  prune.id = "cache-prune";
  const top = document.createElement("tr");
  top.append(cell("th", "nbcellar store prune"), cell("th", "entries forgotten"), cell("th", "frees"));
  prune.append(top);
  const flags = { superseded: "--superseded", "older than 30 days": "--older-than 30d" };
  for (const [what, freed] of Object.entries(data.prune)) {
    const row = document.createElement("tr");
    row.append(cell("td", flags[what] || what, "text"), cell("td", freed.entries), cell("td", size(freed.bytes)));
    prune.append(row);
  }
  place.replaceChildren(summary, cell("h2", "per notebook (its recorded runs)"), table,
    cell("p", `${data.unused} entries used by no recorded run (made in a notebook, or their runs forgotten)`, "note"),
    cell("h2", "what a prune would free"), prune,
    cell("p", "a value other entries or checkpoints still hold is not counted as freed", "note"));
}

const pages = { runs: runsPage, run: runPage, compare: comparePage, jobs: jobsPage, pipeline: pipelinePage, cache: cachePage };
(pages[document.body.dataset.page] || (() => {}))();
