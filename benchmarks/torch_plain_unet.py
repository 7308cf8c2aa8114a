"""A plain PyTorch script of the benchmark's U-Net step, to check the benchmark's PyTorch figure against.

    python -m benchmarks.torch_plain_unet [--threads 2] [--steps 30] [--size 128 128] [--classes 4]

What a PyTorch user would write and time: the hand-built U-Net of torch_models.py in channels_last, Adam,
cross-entropy, one step after another, timed with perf_counter after a few warm-up steps; no interleaving
with anything else. Prints the median step time in ms (and a RESULT line of JSON for process_cases.py).
"""
import argparse
import json
import statistics
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, nargs=2, default=(128, 128))
    p.add_argument("--classes", type=int, default=4)
    args = p.parse_args(argv)
    import torch

    from benchmarks.torch_models import UNet
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    h, w = args.size
    net = UNet(3, args.classes, 3, 16, batch_norm=True).train().to(memory_format=torch.channels_last)
    x = torch.rand(args.batch, 3, h, w).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, args.classes, (args.batch, h, w))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for i in range(args.steps + 3):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        loss.item()
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1e3)
    median = statistics.median(times)
    print(f"plain PyTorch U-Net step ({args.batch}x{h}x{w}x3, {args.threads} threads): median {median:.1f} ms, "
          f"min {min(times):.1f}, max {max(times):.1f} over {len(times)} steps")
    print("RESULT " + json.dumps({"median_ms": median, "min_ms": min(times), "max_ms": max(times),
                                  "steps": len(times)}), flush=True)


if __name__ == "__main__":
    main()
