"""Parse a Prometheus text exposition (stdin) with Prometheus's own Python
parser (prometheus_client's text_string_to_metric_families) and print
every sample as JSON: [{"family", "type", "name", "labels", "value"}].
A parse error exits non-zero with the parser's message."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append(
            {
                "family": family.name,
                "type": family.type,
                "name": s.name,
                "labels": dict(s.labels),
                "value": s.value,
            }
        )
print(json.dumps(samples))
