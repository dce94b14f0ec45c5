"""Benchmark a config's model like MoBaNet's Table III.

Prints trainable parameters, inference latency (ms per batch), throughput
(images/s) and peak memory at a given input size, on CUDA when available,
else on the CPU. Weights are random unless ``--checkpoint`` is given: speed
and memory do not depend on their values.

Example::

    python tools/analysis_tools/benchmark.py \
        configs/mobanet/dinov2_vitb_potsdam.py --shape 256 256 --batch-size 1
"""
import argparse
import resource
import time

import torch
from mmengine.config import DictAction
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmrsfusion.engine.hooks import load_trainable_checkpoint
from mmrsfusion.utils import load_config, total_channels


def parse_args():
    parser = argparse.ArgumentParser(description='Benchmark a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--checkpoint',
        help='optional checkpoint to load (a trainable-only checkpoint gets '
        'its frozen backbone re-attached from the pretrained file)')
    parser.add_argument(
        '--shape', type=int, nargs=2, default=[256, 256], help='H W')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--repeat', type=int, default=20)
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, e.g. key=value')
    return parser.parse_args()


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated GPU memory, or the process's peak resident set size
    on the CPU (the whole process: Python, libraries, model, activations)."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)

    device = torch.device(args.device)
    model = MODELS.build(cfg.model)
    if args.checkpoint:
        load_trainable_checkpoint(model, args.checkpoint)
    model.to(device).eval()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    h, w = args.shape
    channels = total_channels(cfg.model.data_preprocessor.modalities)
    inputs = torch.randn(args.batch_size, channels, h, w, device=device)
    metas = [
        dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
             padding_size=[0, 0, 0, 0])
    ] * args.batch_size
    samples = [SegDataSample(metainfo=m) for m in metas]

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    with torch.no_grad():
        for _ in range(args.warmup):
            model.predict(inputs, samples)
        sync()
        start = time.perf_counter()
        for _ in range(args.repeat):
            model.predict(inputs, samples)
        sync()
        elapsed = time.perf_counter() - start

    latency_ms = elapsed / args.repeat * 1000
    print(f'config: {args.config}')
    print(f'device: {device} (threads={torch.get_num_threads()})')
    print(f'input: {args.batch_size}x{channels}x{h}x{w}')
    print(f'trainable params: {trainable} ({trainable / 1e6:.2f}M)')
    print(f'latency: {latency_ms:.2f} ms/batch')
    print(f'throughput: {args.batch_size * 1000 / latency_ms:.1f} img/s')
    kind = 'allocated' if device.type == 'cuda' else 'process peak RSS'
    print(f'peak memory: {peak_memory_mb(device):.0f} MB ({kind})')


if __name__ == '__main__':
    main()
