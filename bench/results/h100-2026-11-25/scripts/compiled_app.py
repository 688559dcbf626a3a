import dataclasses, time
from core import darknet_lab as lab
from tests.unit.conftest import RecordingContext
ctx = RecordingContext(); t = time.perf_counter()
lab.run_darknet(dataclasses.replace(lab.preset_spec("lecture"), epochs=4, compile_model=True).to_dict(), ctx)
[r] = ctx.of("result")
print(f"compiled lecture run_darknet, 4 epochs: {time.perf_counter() - t:.1f} s in all, training {r['seconds']:.1f} s, "
      f"{r['images_per_second']:,.0f} pictures/s, accuracy {r['accuracy']:.1%}, compiled {r['compiled']}", flush=True)
