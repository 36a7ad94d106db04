// Types for the generated bundle vendor/tf.mjs (see vendor/entry.js).
export * from "@tensorflow/tfjs-core";
export * as webgpu from "@tensorflow/tfjs-backend-webgpu";
import "@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops";
