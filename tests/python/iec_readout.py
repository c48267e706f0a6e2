#!/usr/bin/env python3
"""Read a meter's IEC 62056-21 data readout over TCP with the PyPI package
``iec62056-21`` (0.0.2) and print what that package parsed, as JSON.

Usage: iec_readout.py HOST PORT [ADDRESS]

Output: {"identification": ..., "manufacturer": ..., "baud_char": ...,
"data_sets": [{"address": ..., "value": ..., "unit": ...}, ...]}, one data
set per entry in the package's own order (``AnswerDataMessage.data``). A
value group that follows another on the same line comes back from the
package with address null; it is printed as the package gave it.

Driven by tests/iec62056_python.rs; the interpreter comes from
scripts/lib/iec62056_python.sh.
"""

import json
import sys

from iec62056_21.client import Iec6205621Client


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    host, port = argv[1], int(argv[2])
    address = argv[3] if len(argv) == 4 else ""
    client = Iec6205621Client.with_tcp_transport((host, port), device_address=address)
    client.connect()
    try:
        answer = client.standard_readout()
    finally:
        client.disconnect()
    out = {
        "identification": client.identification,
        "manufacturer": client.manufacturer_id,
        "baud_char": client.switchover_baudrate_char,
        "data_sets": [
            {"address": s.address, "value": s.value, "unit": s.unit} for s in answer.data
        ],
    }
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
