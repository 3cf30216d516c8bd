"""Sidecar injection: put the netguard WAF in front of the pods that opt in.

One pure mutation (`inject_pod`, `inject_object`) behind two callers: the mutating admission webhook
(`netguard webhook`) and the offline `netguard inject`.
"""

from waf.injection.mutation import Outcome, inject_object, inject_pod
from waf.injection.settings import Settings

__all__ = ["Outcome", "Settings", "inject_object", "inject_pod"]
