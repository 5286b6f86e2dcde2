import { crashPointSuite } from "./resume-helpers.ts";

// Exactly-once resume: SIGKILL the importing CLI at each of these named crash points
// (src/load/crash-points.ts; "#n" = the n-th time the point is reached), resume, verify.
crashPointSuite("crash and resume: late phase", [
  "view:after",
  "analyze:before",
  "analyze:after",
  "verify:before",
  "run:before-complete",
  "run:after-complete",
]);
