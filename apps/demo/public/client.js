// EventSource with a named event and a live view. No framework, no build.
const STATES = ["CONNECTING", "OPEN", "CLOSED"];

function showState(id, source) {
  const el = document.getElementById(id);
  const update = () => {
    el.textContent = STATES[source.readyState];
    el.className = `state ${STATES[source.readyState]}`;
  };
  source.addEventListener("open", update);
  source.addEventListener("error", update);
  update();
}

const time = new EventSource("/api/time");
showState("time-state", time);
time.addEventListener("time", (e) => {
  document.getElementById("clock").textContent = new Date(JSON.parse(e.data)).toLocaleTimeString();
});

const demo = new EventSource("/sse");
showState("sse-state", demo);
demo.addEventListener("message", (e) => {
  const li = document.createElement("li");
  li.textContent = e.data;
  document.getElementById("demo").append(li);
  // The stream ends after ten events; stop the browser from reconnecting and replaying them.
  if (e.data === "demo10") {
    demo.close();
    showState("sse-state", demo);
  }
});
