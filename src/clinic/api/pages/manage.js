// The patient's page of one booking, opened by the link in their emails:
// /manage/<booking id>#<manage token>. The token stays in the fragment, which the
// browser never sends to a server; it goes to the API as Authorization: Bearer.
// Everything shown is set as text, never as markup.
"use strict";

const WORDS = {
  es: {
    title: "Su cita",
    loading: "Cargando…",
    unknown: "Este enlace no abre ninguna cita: puede que la cita ya haya pasado. Llame a la clínica.",
    status: "Estado",
    when: "Fecha y hora",
    doctor: "Médico",
    patient: "A nombre de",
    states: {
      pending: "pendiente de confirmar",
      confirmed: "confirmada",
      rejected: "no se pudo reservar",
      cancelled: "anulada",
      no_show: "no acudió",
    },
    cancel: "Anular la cita",
    sure: "¿Seguro que quiere anular la cita?",
    move: "Cambiar la cita a otra hora",
    day: "Día",
    noSlots: "No quedan horas libres ese día.",
    moving: "Estamos cambiando su cita; le escribiremos en cuanto esté hecho.",
    failed: "No se ha podido hacer el cambio",
  },
  en: {
    title: "Your appointment",
    loading: "Loading…",
    unknown: "This link opens no appointment: it may have passed already. Please call the clinic.",
    status: "Status",
    when: "Date and time",
    doctor: "Doctor",
    patient: "Booked for",
    states: {
      pending: "waiting for confirmation",
      confirmed: "confirmed",
      rejected: "could not be booked",
      cancelled: "cancelled",
      no_show: "missed",
    },
    cancel: "Cancel the appointment",
    sure: "Do you really want to cancel the appointment?",
    move: "Move the appointment to another time",
    day: "Day",
    noSlots: "No free times are left that day.",
    moving: "We are moving your appointment; we will write once it is done.",
    failed: "The change could not be made",
  },
};

const zone = document.documentElement.dataset.timezone;
const bookingId = decodeURIComponent(location.pathname.split("/").pop());
const key = { Authorization: `Bearer ${location.hash.slice(1)}` };
const api = `../booking/${encodeURIComponent(bookingId)}`;
let words = WORDS.es;
let booking = null;

const $ = (id) => document.getElementById(id);

function say(text) {
  $("message").textContent = text;
}

function when(iso) {
  const format = { dateStyle: "full", timeStyle: "short", hourCycle: "h23", timeZone: zone };
  return new Intl.DateTimeFormat(document.documentElement.lang, format).format(new Date(iso));
}

async function problem(answer) {
  try {
    const body = await answer.json();
    return typeof body.detail === "string" ? body.detail : body.detail[0].msg;
  } catch {
    return `HTTP ${answer.status}`;
  }
}

function show() {
  words = WORDS[booking.language] || WORDS.es;
  document.documentElement.lang = booking.language || "es";
  document.title = words.title;
  for (const name of ["title", "status", "when", "doctor", "patient"]) {
    const label = name === "title" ? $("title") : $(`label-${name}`);
    label.textContent = words[name];
  }
  $("status").textContent = words.states[booking.status] || booking.status;
  $("when").textContent = when(booking.date);
  $("doctor").textContent = booking.doctorName || booking.doctorId || "—";
  $("patient").textContent = booking.patientName;
  $("details").hidden = false;
  const changeable = booking.status === "confirmed" && !booking.pendingMove;
  $("actions").hidden = !changeable;
  $("cancel").textContent = words.cancel;
  $("move-title").textContent = words.move;
  $("label-day").textContent = words.day;
  say(booking.pendingMove ? words.moving : "");
}

async function load() {
  const answer = await fetch(api, { headers: key, cache: "no-store" });
  if (!answer.ok) {
    $("details").hidden = $("actions").hidden = true;
    say(WORDS.es.unknown + " / " + WORDS.en.unknown);
    return;
  }
  booking = await answer.json();
  show();
  if (booking.pendingMove) setTimeout(load, 1000);
}

async function cancel() {
  if (!confirm(words.sure)) return;
  const answer = await fetch(`${api}/cancel`, { method: "POST", headers: key });
  if (!answer.ok) return say(`${words.failed}: ${await problem(answer)}`);
  await load();
}

async function slots() {
  const list = $("slots");
  list.replaceChildren();
  if (!$("day").value || !booking.doctorId) return;
  const doctor = encodeURIComponent(booking.doctorId);
  const answer = await fetch(`../doctors/${doctor}/availability?date=${$("day").value}`);
  if (!answer.ok) return say(`${words.failed}: ${await problem(answer)}`);
  const free = (await answer.json()).slots || [];
  if (!free.length) return say(words.noSlots);
  say("");
  for (const slot of free) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = when(slot.start);
    button.addEventListener("click", () => move(slot.start));
    const item = document.createElement("li");
    item.append(button);
    list.append(item);
  }
}

async function move(start) {
  const answer = await fetch(`${api}/reschedule`, {
    method: "POST",
    headers: { ...key, "Content-Type": "application/json" },
    body: JSON.stringify({ date: start }),
  });
  if (!answer.ok) return say(`${words.failed}: ${await problem(answer)}`);
  $("slots").replaceChildren();
  await load();
}

$("cancel").addEventListener("click", cancel);
$("day").addEventListener("change", slots);
load();
