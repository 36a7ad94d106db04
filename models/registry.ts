/**
 * The model registry: id -> family spec. Adding a model is one new file exporting a
 * {@link ModelSpec} plus one line in {@link MODELS}.
 *
 * @module
 */
import type { Ctx, MetaForwardOptions, Model, ModelOptions, Module, OpCounts } from "./core.ts";
import { metaForward, Params } from "./core.ts";
import { UserError } from "../runtime/errors.ts";

/** A model family as the registry knows it. */
export interface ModelSpec {
  /** Canonical id (e.g. "mobilenet"). */
  id: string;
  /** What the reference code instantiates (e.g. "torchvision mobilenet_v2, width 1.0"). */
  description: string;
  /** Named variants/options and their defaults (e.g. { patchSize: 7 }). */
  defaults?: Record<string, unknown>;
  /** Creates the network's parameters in `p` and returns its root module. */
  build(p: Params, o: ModelOptions): Module;
  /** Returns an equivalent inference network with fused branches (MobileOne, GhostNet). */
  reparameterize?(net: Module, p: Params, o: ModelOptions): Module;
}

/** Every registered model, by id. Families register themselves here (one line each). */
export const MODELS: Record<string, ModelSpec> = {};

/** Registers a model family (called once per family file, or by a user's own model file). */
export function registerModel(spec: ModelSpec): void {
  MODELS[spec.id] = spec;
}

/** The spec of `id`, or a {@link UserError} listing the known ids. */
export function modelSpec(id: string): ModelSpec {
  const spec = MODELS[id];
  if (!spec) {
    throw new UserError(`unknown model "${id}"; known models: ${Object.keys(MODELS).sort().join(", ")}`);
  }
  return spec;
}

/** `options` over the spec defaults of model `id`: the options it is built with. */
export function modelOptions(id: string, options: ModelOptions): ModelOptions {
  return { ...modelSpec(id).defaults, ...options };
}

/** Builds model `id` with freshly initialised parameters (seeded by `options.seed`, default 0). */
export function buildModel(id: string, options: ModelOptions): Model {
  const spec = modelSpec(id);
  const o = modelOptions(id, options);
  const params = new Params(o.seed ?? 0);
  const net = spec.build(params, o);
  const model: Model = {
    id,
    options: o,
    params,
    apply: (x, ctx: Ctx) => net.apply(x, ctx),
  };
  if (spec.reparameterize) {
    const fuse = spec.reparameterize;
    model.reparameterize = () => {
      const fusedParams = new Params(0);
      const fused = fuse(net, fusedParams, o);
      return { id, options: o, params: fusedParams, apply: (x, ctx: Ctx) => fused.apply(x, ctx) };
    };
  }
  return model;
}

/**
 * Builds model `id` (`options` over the spec's defaults) in meta mode and runs one forward
 * ({@link metaForward}): parameters, MACs and fvcore FLOPs, and every op to `run.trace`.
 */
export function metaForwardModel(
  id: string,
  options: ModelOptions,
  run: MetaForwardOptions = {},
): OpCounts & { params: number } {
  const spec = modelSpec(id);
  const o = modelOptions(id, options);
  return metaForward((p) => spec.build(p, o), o.imageSize, run);
}

/** Parameters, MACs and fvcore FLOPs of model `id` at batch 1, counted without running it. */
export function countModelOps(id: string, options: ModelOptions): OpCounts & { params: number } {
  return metaForwardModel(id, options);
}
