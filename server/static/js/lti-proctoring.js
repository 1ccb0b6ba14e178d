// LTI Proctoring (server/lti/proctoring.py): the student page's own system check (check.js)
// before the assessment starts; the Start button waits for a passing check.
import { runChecks } from "./check.js";

const list = document.getElementById("checks");
const preview = document.getElementById("preview");
const start = document.getElementById("start");
let stream = null;

async function check() {
  start.disabled = true;
  const result = await runChecks(list, preview, async () => {}, stream);
  stream = result.stream;
  start.disabled = !result.ok;
}

document.getElementById("check-again").addEventListener("click", check);
check();
