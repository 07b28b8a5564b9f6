/**
 * Checking a published tree as devices will consume it: `verifyTree` (si verify-tree, the
 * dashboard), the client's upgrade-path choice (candidates, WeightedScorer, phases) and
 * check-latest's report.
 */
export { verifyTree, type VerifyTreeOptions } from "./verify-tree.js";
export { formatReport, type Checked, type Problem, type Severity, type TreeReport } from "./report.js";
export { choosePath, getCandidates, iterPath, pathLabel, ubuntuCommand, weightedScores, type Choice } from "./client-path.js";
export { devicePhase } from "./py-random.js";
export { CHECK_LATEST_DEFAULTS, checkLatestLines, fetchDeviceIndex, longVersion } from "./check-latest.js";
