import { crashPointSuite } from "./resume-helpers.ts";

// Exactly-once resume: SIGKILL the importing CLI at each of these named crash points
// (src/load/crash-points.ts; "#n" = the n-th time the point is reached), resume, verify.
crashPointSuite("crash and resume: keys-indexes phase", [
  "keys:before-commit",
  "keys:after-commit",
  "index:before",
  "index:before-commit",
  "index:after-commit",
  "constraint:before-add",
]);
