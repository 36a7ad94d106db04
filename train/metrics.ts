/**
 * The run's metrics log: `metrics.jsonl` in the run folder, one JSON object per progress line
 * (`"kind":"step"`) and per finished epoch (`"kind":"epoch"`), each written and handed to the OS as
 * it happens, so a crashed or running training can be plotted (`deno task report`) up to its last
 * line; optionally mirrored as TensorBoard scalars (train/tensorboard.ts).
 *
 * On resume the log keeps the records of the epochs the checkpoint holds and drops those of the
 * epoch that was interrupted (it is trained again), so every step appears once.
 *
 * @module
 */
import { writeFileAtomic } from "../runtime/fs.ts";
import { TensorBoardWriter } from "./tensorboard.ts";

/** One progress line. */
export interface StepMetrics {
  /** 1-based epoch. */
  epoch: number;
  /** Steps done in this epoch. */
  step: number;
  stepsPerEpoch: number;
  /** Steps done since the start of the run. */
  globalStep: number;
  lr: number;
  /** Mean training loss over the epoch so far. */
  loss: number;
  /** Training accuracy (%) over the epoch so far (against the CutMix target A). */
  trainAccuracy: number;
  imagesPerSecond: number;
}

/** One finished epoch. */
export interface EpochMetrics {
  epoch: number;
  globalStep: number;
  lrFirst: number;
  lrLast: number;
  trainLoss: number;
  trainAccuracy: number;
  testAccuracy: number;
  /** Mean cross-entropy on the test split, when measured. */
  testLoss?: number | null;
  /** Top-5 test accuracy (%), when the dataset has more than 5 classes. */
  testTop5?: number | null;
  trainSeconds: number;
  evalSeconds: number;
  imagesPerSecond: number;
}

/** The JSON line of a step record. */
export function stepLine(m: StepMetrics, time = new Date()): string {
  return JSON.stringify({
    kind: "step",
    epoch: m.epoch,
    step: m.step,
    steps_per_epoch: m.stepsPerEpoch,
    global_step: m.globalStep,
    lr: m.lr,
    loss: m.loss,
    train_accuracy: m.trainAccuracy,
    images_per_second: m.imagesPerSecond,
    time: time.toISOString(),
  });
}

/** The JSON line of an epoch record. */
export function epochLine(m: EpochMetrics, time = new Date()): string {
  return JSON.stringify({
    kind: "epoch",
    epoch: m.epoch,
    global_step: m.globalStep,
    lr_first: m.lrFirst,
    lr_last: m.lrLast,
    train_loss: m.trainLoss,
    train_accuracy: m.trainAccuracy,
    test_accuracy: m.testAccuracy,
    test_loss: m.testLoss ?? null,
    test_top5: m.testTop5 ?? null,
    train_seconds: m.trainSeconds,
    eval_seconds: m.evalSeconds,
    images_per_second: m.imagesPerSecond,
    time: time.toISOString(),
  });
}

/** Writes metrics.jsonl (and TensorBoard scalars when asked) for one run. */
export class MetricsLog {
  readonly path: string;
  #file: Deno.FsFile;
  #tb?: TensorBoardWriter;

  private constructor(path: string, file: Deno.FsFile, tb?: TensorBoardWriter) {
    this.path = path;
    this.#file = file;
    this.#tb = tb;
  }

  /**
   * Opens `path`. `keepEpochs` = 0 starts a new log; n > 0 (a resume after n epochs) keeps the
   * records of epochs 1..n and appends after them. `tensorboard` names a folder for event files.
   */
  static async open(
    path: string,
    options: { keepEpochs?: number; tensorboard?: string } = {},
  ): Promise<MetricsLog> {
    const keep = options.keepEpochs ?? 0;
    let kept = "";
    if (keep > 0) {
      const old = await Deno.readTextFile(path).catch((err) => {
        if (err instanceof Deno.errors.NotFound) return "";
        throw err;
      });
      kept = old.split("\n").filter((line) => {
        try {
          return line.trim() !== "" && JSON.parse(line).epoch <= keep;
        } catch {
          return false; // a line cut off by a kill
        }
      }).map((l) => l + "\n").join("");
    }
    await writeFileAtomic(path, kept);
    const file = await Deno.open(path, { append: true });
    return new MetricsLog(
      path,
      file,
      options.tensorboard ? TensorBoardWriter.open(options.tensorboard) : undefined,
    );
  }

  #line(text: string): void {
    const bytes = new TextEncoder().encode(text + "\n");
    let off = 0;
    while (off < bytes.length) off += this.#file.writeSync(bytes.subarray(off));
  }

  /** Records a progress line. */
  step(m: StepMetrics): void {
    this.#line(stepLine(m));
    this.#tb?.scalars(m.globalStep, {
      "train/loss": m.loss,
      "train/accuracy": m.trainAccuracy,
      "train/lr": m.lr,
      "train/images_per_second": m.imagesPerSecond,
    });
  }

  /** Records a finished epoch. */
  epoch(m: EpochMetrics): void {
    this.#line(epochLine(m));
    this.#tb?.scalars(m.globalStep, {
      "epoch/train_loss": m.trainLoss,
      "epoch/train_accuracy": m.trainAccuracy,
      "test/accuracy": m.testAccuracy,
      "test/loss": m.testLoss,
      "test/top5": m.testTop5,
      "test/eval_seconds": m.evalSeconds,
      "epoch/images_per_second": m.imagesPerSecond,
    });
  }

  /** Closes the log (and the event file). */
  close(): void {
    this.#file.close();
    this.#tb?.close();
  }
}
