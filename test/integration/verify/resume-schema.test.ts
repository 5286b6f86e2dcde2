import { crashPointSuite } from "./resume-helpers.ts";

// Exactly-once resume: SIGKILL the importing CLI at each of these named crash points
// (src/load/crash-points.ts; "#n" = the n-th time the point is reached), resume, verify.
crashPointSuite("crash and resume: schema phase", [
  "import:after-run-created",
  "schema:before-create",
  "schema:before-commit",
  "schema:after-commit",
  "data:chunk-start#2",
  "data:mid-copy#3",
]);
