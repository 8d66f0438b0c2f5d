"""A tiny, real training run: fits y = w*x + b to noisy data by gradient descent.

trainops passes the job's `input` as a JSON file named by TRAINOPS_INPUT and collects every file
written under TRAINOPS_OUTPUT_DIR as a named output (weights.json -> `weights`).
"""

import json
import os
import random
import sys
import time


def main() -> int:
    with open(os.environ["TRAINOPS_INPUT"]) as f:
        params = json.load(f)
    epochs = int(params.get("epochs", 300))
    lr = float(params.get("learning_rate", 0.05))
    step_delay = float(params.get("step_delay_seconds", 0.0))
    out = os.environ["TRAINOPS_OUTPUT_DIR"]

    rng = random.Random(int(params.get("seed", 7)))
    xs = [rng.uniform(-1, 1) for _ in range(256)]
    ys = [3.0 * x + 0.5 + rng.gauss(0, 0.05) for x in xs]
    w, b = 0.0, 0.0
    loss = float("inf")
    for epoch in range(1, epochs + 1):
        gw = gb = loss = 0.0
        for x, y in zip(xs, ys, strict=True):
            err = w * x + b - y
            gw += 2 * err * x / len(xs)
            gb += 2 * err / len(xs)
            loss += err * err / len(xs)
        w, b = w - lr * gw, b - lr * gb
        if epoch % 50 == 0 or epoch == epochs:
            print(f"epoch {epoch}/{epochs} loss={loss:.5f}", flush=True)
        if step_delay:
            time.sleep(step_delay)

    with open(os.path.join(out, "weights.json"), "w") as f:
        json.dump({"w": w, "b": b}, f)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({"loss": loss, "epochs": epochs}, f)
    print(f"done: w={w:.3f} b={b:.3f} loss={loss:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
