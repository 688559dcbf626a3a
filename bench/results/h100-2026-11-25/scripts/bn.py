import torch, torch.nn.functional as F
from core.models.darknet import darknet
m = darknet((1,), 10, 8, 0.1).cuda()
c = torch.compile(m, mode="reduce-overhead", dynamic=False)
opt = torch.optim.SGD(m.parameters(), lr=0.1)
bn = [x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)][0]
for i in range(5):
    x = torch.randn(64, 3, 32, 32, device="cuda") * 3 + 2
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = F.cross_entropy(c(x), torch.randint(0, 10, (64,), device="cuda"))
    opt.zero_grad(); loss.backward(); opt.step(); print(i, round(loss.item(), 3), "running_mean", bn.running_mean[:3].tolist(), "batches", int(bn.num_batches_tracked), flush=True)
