// salesflow board: renders the JSON endpoints, moves cards by drag and drop, follows
// the change feed. Plain JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

(function () {
  const POLL_MS = 1000;
  const FORECAST_MS = 3000;
  const FEED_ITEMS = 30;

  const state = {
    process: new URLSearchParams(location.search).get("process") || "",
    // Who moves the cards, as history records it: ?user=NAME (none by default).
    user: new URLSearchParams(location.search).get("user") || null,
    board: null,
    position: null, // the change feed position the page has seen up to
    busy: false, // a drag or a dialog is under way: later boards wait
    waiting: null, // the newest board that arrived while busy
    focus: null, // the card moved with the keyboard keeps the focus
    forecastAt: 0,
    forecastTimer: null,
  };

  const $ = (id) => document.getElementById(id);

  function element(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function api(method, url, body) {
    const options = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    let data;
    try {
      data = await response.json();
    } catch (error) {
      data = { error: "BadResponse", message: `${response.status} ${response.statusText}` };
    }
    return { ok: response.ok, status: response.status, data };
  }

  // -- messages ---------------------------------------------------------------

  let toastTimer = null;
  function toast(text) {
    const box = $("toast");
    box.textContent = text;
    box.hidden = !text;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 5000);
  }

  function showError(data, card) {
    const box = $("error");
    const message = data.message || String(data);
    box.textContent = card ? `${card.title}: ${message}` : message;
    box.dataset.error = data.error || "";
    box.hidden = false;
  }

  function clearError() {
    const box = $("error");
    box.hidden = true;
    box.textContent = "";
    box.dataset.error = "";
  }

  function setLive(on, why) {
    const live = $("live");
    live.classList.toggle("on", on);
    live.classList.toggle("off", !on);
    live.textContent = on ? "live" : `offline${why ? ": " + why : ""}`;
  }

  // -- the board --------------------------------------------------------------

  function initials(title) {
    const words = title.split(/[\s:]+/).filter((w) => /[A-Za-z0-9]/.test(w));
    return words.slice(0, 2).map((w) => w[0].toUpperCase()).join("");
  }

  const BOX_TEXT = {
    OVERDUE: "an activity is overdue",
    TODAY: "an activity is due today",
    UPCOMING: "activities are planned",
    NONE: "no activity planned",
  };

  function activityBox(indicator) {
    const label = `${BOX_TEXT[indicator.state]} (${indicator.open} open, ${indicator.overdue} overdue)`;
    return element(
      "span",
      { class: `box ${indicator.state}`, title: label, "aria-label": label,
        dataset: { indicator: indicator.state } },
      indicator.open > 0 ? String(indicator.open) : "!",
    );
  }

  function cardNode(card) {
    const node = element(
      "li",
      { class: `card${card.paused ? " paused" : ""}`, draggable: "true", tabindex: "0",
        "aria-keyshortcuts": "ArrowLeft ArrowRight",
        title: "Drag to another stage, or press the left or right arrow key",
        dataset: { id: card.id, stage: card.stage } },
      element("span", { class: "initials", "aria-hidden": "true" },
        initials(card.customer || card.title)),
      element("div", { class: "title" }, card.title),
      element("div", { class: "value" }, card.value.text),
      element("div", { class: "owner" }, card.owner ? card.owner : "unassigned",
        card.paused ? " · paused" : ""),
      // A closed deal has nothing left to progress: no activity box.
      card.status === "won" || card.status === "lost" ? null : activityBox(card.indicator),
    );
    node.addEventListener("dragstart", (event) => {
      state.busy = true;
      node.classList.add("dragging");
      event.dataTransfer.setData("text/plain", card.id);
      event.dataTransfer.effectAllowed = "move";
    });
    // Without a mouse: the arrow keys move the card to the stage before or after.
    node.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
      const keys = state.board.columns.map((c) => c.key);
      const next = keys[keys.indexOf(card.stage) + (event.key === "ArrowLeft" ? -1 : 1)];
      if (next === undefined || state.busy) return;
      event.preventDefault();
      state.focus = card.id;
      move(card.id, next);
    });
    node.addEventListener("dragend", () => {
      node.classList.remove("dragging");
      // A drop starts a move, which keeps the page busy until it is done.
      setTimeout(() => { if (!state.moving) release(); }, 0);
    });
    return node;
  }

  function figure(label, field, value) {
    return [element("dt", {}, label), element("dd", { dataset: { field } }, value)];
  }

  function columnNode(column) {
    const cards = element("ul", { class: "cards" }, ...column.cards.map(cardNode));
    const node = element(
      "section",
      { class: `column ${column.kind.toLowerCase()}`, dataset: { stage: column.key },
        "aria-label": column.name },
      element(
        "header", {},
        element("h2", {}, element("span", {}, column.name),
          element("span", { class: "probability" }, `${column.probability}%`)),
        element("dl", { class: "figures" },
          ...figure("Count", "count", column.count),
          ...figure("Total", "total", column.total.text),
          ...figure("Weighted", "weighted", column.weighted.text)),
      ),
      cards,
      column.more ? element("div", { class: "more" }, `and ${column.more} more`) : null,
    );
    node.addEventListener("dragover", (event) => {
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      node.classList.add("over");
    });
    node.addEventListener("dragleave", () => node.classList.remove("over"));
    node.addEventListener("drop", (event) => {
      event.preventDefault();
      node.classList.remove("over");
      const id = event.dataTransfer.getData("text/plain");
      if (id) move(id, column.key);
    });
    return node;
  }

  function render(board) {
    state.board = board;
    state.process = board.process.key;
    const select = $("process");
    select.replaceChildren(...board.processes.map((p) =>
      element("option", { value: p.key, selected: p.key === board.process.key }, p.name)));
    // Keep the keyboard focus on the card that had it (or was just moved by keyboard).
    const active = document.activeElement;
    const focused = state.focus ||
      (active && active.classList.contains("card") ? active.dataset.id : null);
    state.focus = null;
    $("board").replaceChildren(...board.columns.map(columnNode));
    $("board").dataset.process = board.process.key;
    $("open-total").textContent = board.stats.total.text;
    $("open-weighted").textContent = board.stats.weighted.text;
    $("paused").textContent = String(board.stats.paused);
    if (focused) {
      const card = document.querySelector(`.card[data-id="${CSS.escape(focused)}"]`);
      if (card) card.focus();
    }
  }

  function show(board) {
    if (state.busy) state.waiting = board;
    else render(board);
  }

  function release() {
    state.busy = false;
    state.moving = false;
    if (state.waiting) {
      const board = state.waiting;
      state.waiting = null;
      render(board);
    }
    state.focus = null;
  }

  async function load() {
    const answer = await api("GET", `/api/board?process=${encodeURIComponent(state.process)}`);
    if (!answer.ok) {
      showError(answer.data);
      return;
    }
    if (state.position === null) state.position = answer.data.position;
    render(answer.data);
    scheduleForecast(0);
  }

  // -- moving a card ------------------------------------------------------------

  function findCard(id) {
    for (const column of state.board.columns) {
      const card = column.cards.find((c) => c.id === id);
      if (card) return card;
    }
    return null;
  }

  function ask(dialog) {
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue || "abort"), { once: true });
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  async function confirmCancel(plan, card) {
    const n = plan.to_cancel.length;
    $("confirm-title").textContent = `Cancel the ${n} pending ${n === 1 ? "activity" : "activities"}?`;
    $("confirm-text").textContent =
      `Moving "${card ? card.title : plan.opportunity_id}" to ${plan.to_name} leaves ` +
      `${n === 1 ? "this activity" : "these activities"} of the stage it is leaving:`;
    $("confirm-list").replaceChildren(...plan.to_cancel.map((a) =>
      element("li", {}, `${a.title} (due ${a.due.slice(0, 10)})`)));
    return ask($("confirm"));
  }

  async function askReason(card, stage) {
    const reasons = state.board.process.loss_reasons;
    const choice = $("reason-choice");
    const free = $("reason-free");
    choice.replaceChildren(...reasons.map((r) => element("option", { value: r }, r)));
    choice.hidden = reasons.length === 0;
    free.hidden = reasons.length > 0;
    free.required = reasons.length === 0;
    free.value = "";
    $("reason-text").textContent =
      `Moving "${card ? card.title : "the deal"}" to ${stageName(stage)}: the process asks ` +
      "why it was lost.";
    const answer = await ask($("reason"));
    if (answer !== "ok") return null;
    return reasons.length ? choice.value : free.value.trim() || null;
  }

  async function move(id, stage) {
    const card = findCard(id);
    if (card && card.stage === stage) {
      release();
      return;
    }
    state.busy = true;
    state.moving = true;
    try {
      const url = `/api/opportunities/${encodeURIComponent(id)}`;
      let reason = null;
      let preview = await api("POST", `${url}/preview`, { stage });
      if (!preview.ok && preview.data.error === "LossReasonRequired") {
        reason = await askReason(card, stage);
        if (reason === null) {
          toast("Nothing changed.");
          return;
        }
        preview = await api("POST", `${url}/preview`, { stage, loss_reason: reason });
      }
      if (!preview.ok) {
        showError(preview.data, card);
        return;
      }
      let cancel = null;
      if (preview.data.needs_answer) {
        const answer = await confirmCancel(preview.data, card);
        if (answer === "abort") {
          toast("Nothing changed.");
          return;
        }
        cancel = answer === "yes";
      }
      const done = await api("POST", `${url}/stage`,
        { stage, cancel_pending: cancel, loss_reason: reason, actor: state.user });
      if (!done.ok) {
        showError(done.data, card);
        return;
      }
      clearError();
      toast(done.data.notices.join(" "));
      state.waiting = null;
      render(done.data.board);
      scheduleForecast();
    } catch (error) {
      showError({ error: "NetworkError", message: `The server did not answer: ${error}` });
    } finally {
      release();
    }
  }

  // -- the change feed ------------------------------------------------------------

  function stageName(key) {
    const column = state.board && state.board.columns.find((c) => c.key === key);
    return column ? column.name : key;
  }

  function describe(event) {
    const card = event.opportunity_id ? findCard(event.opportunity_id) : null;
    const what = card ? `"${card.title}"` : (event.opportunity_id || "").slice(0, 8);
    const who = event.actor || "someone";
    const kind = event.kind.toLowerCase().replace(/_/g, " ");
    if (event.kind === "STAGE_CHANGED") {
      return `${who} moved ${what} from ${stageName(event.details.from)} to ${stageName(event.details.to)}`;
    }
    return `${who}: ${kind} ${what}`;
  }

  function logEvents(events) {
    const list = $("feed");
    for (const event of events) {
      list.prepend(element("li", { dataset: { position: event.position, kind: event.kind } },
        `${event.at.slice(11, 16)} ${describe(event)}`));
    }
    while (list.children.length > FEED_ITEMS) list.lastElementChild.remove();
  }

  async function poll() {
    let delay = POLL_MS;
    try {
      if (state.position !== null) {
        const query = `after=${state.position}&process=${encodeURIComponent(state.process)}`;
        const answer = await api("GET", `/api/changes?${query}`);
        if (answer.ok) {
          setLive(true);
          state.position = answer.data.position;
          // A board comes with new events, or when the server started the page over
          // from the feed's end (a position past it); either way it is the newest.
          if (answer.data.board) show(answer.data.board);
          if (answer.data.events.length) {
            logEvents(answer.data.events);
            scheduleForecast();
          }
          if (answer.data.more) delay = 0;
        } else {
          setLive(false, answer.data.message);
        }
      }
    } catch (error) {
      setLive(false, "the server does not answer");
    }
    setTimeout(poll, delay);
  }

  // -- the forecast -------------------------------------------------------------

  function scheduleForecast(wait) {
    clearTimeout(state.forecastTimer);
    const since = Date.now() - state.forecastAt;
    const delay = wait !== undefined ? wait : Math.max(0, FORECAST_MS - since);
    state.forecastTimer = setTimeout(loadForecast, delay);
  }

  async function loadForecast() {
    state.forecastAt = Date.now();
    const answer = await api("GET",
      `/api/forecast?process=${encodeURIComponent(state.process)}&months=6`);
    if (!answer.ok) {
      $("forecast-note").textContent = answer.data.message;
      return;
    }
    $("forecast-note").textContent =
      `(${answer.data.currency}, ${answer.data.simulations} simulated outcomes)`;
    window.drawForecast($("chart"), answer.data);
  }

  // -- start ----------------------------------------------------------------------

  $("process").addEventListener("change", (event) => {
    state.process = event.target.value;
    const url = new URL(location.href);
    url.searchParams.set("process", state.process);
    history.replaceState(null, "", url);
    load();
  });

  load().then(poll);
})();
