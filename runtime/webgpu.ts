/**
 * WebGPU + tfjs initialisation: one call picks the adapter, opens a device with the adapter's full
 * limits, installs it as tfjs's `webgpu` backend and turns WebGPU's silent failures (validation
 * errors, a lost device) into errors a run can fail on.
 *
 * @module
 */
import { tf, type WebGPUBackend } from "./tf.ts";
import { UserError } from "./errors.ts";

/** What the chosen adapter and device are and can do. */
export interface AdapterFacts {
  /** tfjs backend in use: "webgpu" or "cpu". */
  backend: string;
  /** Adapter description (e.g. "llvmpipe (LLVM 15.0.6, 256 bits)", "NVIDIA H200"). */
  description: string;
  vendor: string;
  architecture: string;
  /** True for software adapters such as llvmpipe. */
  isFallbackAdapter: boolean;
  /** Key device limits, in bytes or counts. */
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBuffersPerShaderStage: number;
  };
  features: string[];
}

/** Message for machines without any WebGPU adapter. */
export const NO_ADAPTER_MESSAGE = "no WebGPU adapter: install your GPU's Vulkan/Metal/D3D12 driver, " +
  "or Mesa's `mesa-vulkan-drivers` for a CPU-only machine";

let facts: AdapterFacts | undefined;
let firstGpuError: string | undefined;
let deviceLost: string | undefined;

const LIMIT_NAMES = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
] as const;

/**
 * Initialises tfjs on WebGPU (or on the CPU backend with `{ backend: "cpu" }`, the reference for
 * tests) and returns the adapter facts. Idempotent. Throws {@link UserError} (exit 2) when there
 * is no adapter.
 */
export async function initRuntime(options: { backend?: "webgpu" | "cpu" } = {}): Promise<AdapterFacts> {
  const want = options.backend ?? "webgpu";
  if (facts && facts.backend === want) return facts;
  if (want === "cpu") {
    if (!(await tf.setBackend("cpu"))) throw new UserError("tfjs cpu backend failed to initialise");
    facts = {
      backend: "cpu",
      description: "tfjs-backend-cpu",
      vendor: "",
      architecture: "",
      isFallbackAdapter: true,
      limits: {
        maxStorageBufferBindingSize: Number.MAX_SAFE_INTEGER,
        maxBufferSize: Number.MAX_SAFE_INTEGER,
        maxComputeWorkgroupStorageSize: 0,
        maxComputeInvocationsPerWorkgroup: 0,
        maxComputeWorkgroupsPerDimension: 0,
        maxStorageBuffersPerShaderStage: 0,
      },
      features: [],
    };
    return facts;
  }
  const adapter = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new UserError(NO_ADAPTER_MESSAGE);
  const requiredLimits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) requiredLimits[name] = adapter.limits[name];
  const requiredFeatures = (["timestamp-query"] as GPUFeatureName[]).filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  device.addEventListener("uncapturederror", (event) => {
    const message = (event as GPUUncapturedErrorEvent).error.message;
    if (firstGpuError === undefined) firstGpuError = message.split("\n").slice(0, 6).join(" | ");
  });
  device.lost.then((info) => {
    deviceLost = `${info.reason ?? "unknown"}: ${info.message}`;
  });
  const info = adapter.info;
  tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", () => new tf.webgpu.WebGPUBackend(device, info), 3);
  // setBackend resolves to false (it does not throw) when the backend factory fails.
  if (!(await tf.setBackend("webgpu"))) throw new UserError(NO_ADAPTER_MESSAGE);
  facts = {
    backend: "webgpu",
    description: info.description || info.device || "(unnamed adapter)",
    vendor: info.vendor,
    architecture: info.architecture,
    isFallbackAdapter: Boolean(
      (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ??
        (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter,
    ),
    limits: {
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: device.limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
    },
    features: [...device.features].sort(),
  };
  return facts;
}

/** The facts of the initialised runtime; throws if {@link initRuntime} was not awaited. */
export function adapterFacts(): AdapterFacts {
  if (!facts) throw new Error("runtime not initialised: await initRuntime() first");
  return facts;
}

/** The tfjs WebGPU backend instance (for custom kernels and raw device access). */
export function webgpuBackend(): WebGPUBackend {
  return tf.backend() as WebGPUBackend;
}

/** Error raised when the GPU reported a validation error or lost its device. */
export class GpuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GpuError";
  }
}

/**
 * Throws {@link GpuError} if WebGPU reported a validation error or a lost device since start.
 * Call it after each awaited readback: WebGPU errors arrive asynchronously and tfjs would
 * otherwise go on computing garbage.
 */
export function assertGpuHealthy(): void {
  if (deviceLost !== undefined) {
    throw new GpuError(`GPU device lost (${deviceLost}); the run can be resumed from its last checkpoint`);
  }
  if (firstGpuError !== undefined) {
    throw new GpuError(`WebGPU validation error: ${firstGpuError}`);
  }
}

/**
 * Refuses a tensor that WebGPU could not bind: `bytes` over the device's
 * `maxStorageBufferBindingSize`. `what` names the tensor, `fix` the remedy.
 */
export function assertBindable(
  bytes: number,
  what: string,
  fix = "use a smaller --batch-size or --image-size",
): void {
  const limit = facts?.limits.maxStorageBufferBindingSize ?? Number.MAX_SAFE_INTEGER;
  if (bytes > limit) {
    throw new UserError(
      `${what} needs ${(bytes / 2 ** 20).toFixed(1)} MiB in one buffer, over this adapter's ` +
        `maxStorageBufferBindingSize of ${(limit / 2 ** 20).toFixed(0)} MiB: ${fix}`,
    );
  }
}
