"""The demo province: 浙江 agencies, their catalogue and the files they send, built end to end."""

from pubdata.demo.build import DemoSummary, build_demo

__all__ = ["DemoSummary", "build_demo"]
