import { crashPointSuite } from "./resume-helpers.ts";

// Exactly-once resume: SIGKILL the importing CLI at each of these named crash points
// (src/load/crash-points.ts; "#n" = the n-th time the point is reached), resume, verify.
crashPointSuite("crash and resume: data phase", [
  "data:before-quarantine#2",
  "data:before-checkpoint#4",
  "data:before-commit#5",
  "data:after-commit#2",
  "data:before-count-check",
  "keys:before",
]);
