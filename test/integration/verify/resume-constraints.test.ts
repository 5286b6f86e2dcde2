import { crashPointSuite } from "./resume-helpers.ts";

// Exactly-once resume: SIGKILL the importing CLI at each of these named crash points
// (src/load/crash-points.ts; "#n" = the n-th time the point is reached), resume, verify.
crashPointSuite("crash and resume: constraints phase", [
  "constraint:after-add",
  "constraint:before-validate",
  "constraint:after-validate",
  "identity:before",
  "identity:after",
  "view:before",
]);
