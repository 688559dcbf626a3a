"""The lecture Darknet step is launch-bound (the CPU needs ~19-23 ms to enqueue a ~19-24 ms step).
Does torch.compile with CUDA graphs (mode="reduce-overhead") take the CPU out of it?"""
import time, torch, torch.nn.functional as F
from core import darknet_lab as lab
from core.data.cifar import cifar_tensors, random_crop_flip
from core.models.darknet import darknet

spec = lab.preset_spec("lecture")
device = lab.device_for(spec)
train = cifar_tensors(True).to(device.device)
N, BS = len(train.labels), 512
for mode in ("reduce-overhead",):
    torch.manual_seed(0)
    model = torch.compile(device.prepare_model(darknet()), mode=mode, dynamic=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    g = torch.Generator(device="cuda").manual_seed(0)
    order = torch.randperm(N).to(device.device)
    def step(i):
        idx = order[(i * BS) % (N - BS):(i * BS) % (N - BS) + BS]
        x = device.prepare_images(random_crop_flip(train.images[idx], generator=g))
        with device.autocast():
            loss = F.cross_entropy(model(x), train.labels[idx])
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        return loss
    t = time.perf_counter()
    for i in range(6): step(i)
    torch.cuda.synchronize()
    print(f"{mode}: compile + 6 warm-up steps {time.perf_counter() - t:.1f} s", flush=True)
    for r in range(2):
        t = time.perf_counter()
        for i in range(57): step(i)
        torch.cuda.synchronize()
        print(f"{mode} round {r}: {57 * BS / (time.perf_counter() - t):,.0f} pictures/s", flush=True)
