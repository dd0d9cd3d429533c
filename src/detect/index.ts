/**
 * Detection: the loop (loop.ts) runs a check per alert kind (checks/) on what
 * the store and the broker say, and keeps the alerts matching.
 */
export { createDetector, type Detector, type DetectorOptions } from "./loop.ts";
export { DEFAULT_DETECT_CONFIG, type DetectConfig, type DetectorConfig, detectConfig } from "./config.ts";
