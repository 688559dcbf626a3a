"""Where does the app lose pictures/s at lecture size on the GPU? Plain-loop variants, interleaved."""
import dataclasses, statistics, time
import torch, torch.nn.functional as F
from core import darknet_lab as lab
from core.data.cifar import cifar_tensors, random_crop_flip
from core.models.darknet import darknet
from tests.unit.conftest import RecordingContext

spec = lab.preset_spec("lecture")
device = lab.device_for(spec)
train = cifar_tensors(True).to(device.device)
N, BS = len(train.labels), 512

def cpu_crop(images, generator, padding=4):  # the old one: randoms on the CPU, copied over
    n, _, h, w = images.shape
    padded = F.pad(images, [padding] * 4, mode="reflect")
    d = images.device
    top = torch.randint(0, 9, (n,), generator=generator).to(d)
    left = torch.randint(0, 9, (n,), generator=generator).to(d)
    rows = (top[:, None] + torch.arange(h, device=d))[:, None, :, None]
    cols = (left[:, None] + torch.arange(w, device=d))[:, None, None, :]
    cropped = padded[torch.arange(n, device=d)[:, None, None, None], torch.arange(3, device=d)[None, :, None, None], rows, cols]
    flip = (torch.rand(n, generator=generator) < 0.5).to(d)
    return torch.where(flip[:, None, None, None], cropped.flip(-1), cropped)

def loop(variant, steps=57):
    torch.manual_seed(0)
    model = device.prepare_model(darknet())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    g_cpu, g_dev = torch.Generator().manual_seed(0), torch.Generator(device="cuda").manual_seed(0)
    order = torch.randperm(N, generator=g_cpu).to(device.device)
    enqueue = []
    def step(i):
        idx = order[(i * BS) % (N - BS):(i * BS) % (N - BS) + BS]
        x = train.images[idx]
        x = cpu_crop(x, g_cpu) if variant == "cpu randoms" else random_crop_flip(x, generator=g_dev)
        t0 = time.perf_counter()
        with device.autocast():
            loss = F.cross_entropy(model(device.prepare_images(x)), train.labels[idx])
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        enqueue.append(time.perf_counter() - t0)
        if variant == "item per step":
            loss.item()
    for i in range(4): step(i)
    torch.cuda.synchronize(); enqueue.clear()
    start = time.perf_counter()
    for i in range(steps): step(i)
    torch.cuda.synchronize()
    return steps * BS / (time.perf_counter() - start), statistics.median(enqueue) * 1000

results = {}
for rnd in range(2):
    for v in ("device randoms", "cpu randoms", "item per step"):
        rate, cpu_ms = loop(v)
        results.setdefault(v, []).append(rate)
        print(f"round {rnd} {v}: {rate:,.0f} pictures/s, CPU time to enqueue one step {cpu_ms:.1f} ms "
              f"(GPU-bound if much less than {1000 * BS / rate:.1f} ms per step)", flush=True)
# the GPU time of one step, from CUDA events, with the CPU far ahead
torch.manual_seed(0)
model = device.prepare_model(darknet()); opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
x = device.prepare_images(train.images[:BS]); y = train.labels[:BS]
def one():
    with device.autocast():
        loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
for _ in range(5): one()
torch.cuda.synchronize()
a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
a.record()
for _ in range(30): one()
b.record(); torch.cuda.synchronize()
print(f"30 steps back to back: {a.elapsed_time(b) / 30:.1f} ms per step on the GPU clock")
# in-process Learner with the app's callbacks (no job manager, no worker process)
for rnd in range(2):
    ctx = RecordingContext()
    lab.run_darknet(dataclasses.replace(spec, epochs=6).to_dict(), ctx)
    [result] = ctx.of("result")
    print(f"round {rnd} in-process run_darknet (app callbacks, no worker): {result['images_per_second']:,.0f} pictures/s", flush=True)
    rate, _ = loop("device randoms")
    print(f"round {rnd} plain right after: {rate:,.0f} pictures/s", flush=True)
