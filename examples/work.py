"""One element of the hello-array example: a little work, a line of output."""

import os
import time

index = int(os.environ["JOBFLEET_ARRAY_INDEX"])
time.sleep(0.05 + (index % 5) * 0.02)
print(f"element {index}: {index}^2 = {index * index} (job {os.environ['JOBFLEET_JOB_ID']})")
