"""The plain-PyTorch code for what a lab shows, for students to take home."""
from __future__ import annotations

import inspect

from core.models import mnist_cnn


def mnist_snippet(arch: str, epochs: int, max_lr: float, batch_size: int, optimizer: str) -> str:
    """A script that trains the same model the same way with only torch and torchvision."""
    body = inspect.getsource(mnist_cnn).split('"""', 2)[2]
    model_source = body[body.index("LESSON_CHANNELS"):].strip()  # the models, without their imports
    make_optimizer = (
        f"torch.optim.Adam(model.parameters(), lr={max_lr:g}, betas=(0.9, 0.99))" if optimizer == "adam"
        else f"torch.optim.SGD(model.parameters(), lr={max_lr:g}, momentum=0.9)"
    )
    return f'''import torch
import torch.nn.functional as F
from torch import nn
from torchvision import datasets, transforms

{model_source}


tfm = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
train = torch.utils.data.DataLoader(datasets.MNIST("data", train=True, download=True, transform=tfm),
                                    batch_size={batch_size}, shuffle=True)
valid = torch.utils.data.DataLoader(datasets.MNIST("data", train=False, download=True, transform=tfm),
                                    batch_size=1000)
model = {arch}()
optimizer = {make_optimizer}
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr={max_lr:g},
                                                total_steps={epochs} * len(train))
for epoch in range({epochs}):
    model.train()
    for images, labels in train:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    model.eval()
    with torch.no_grad():
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in valid)
    print(f"epoch {{epoch + 1}}: accuracy {{correct / len(valid.dataset):.2%}}")
'''
