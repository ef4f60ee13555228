# -*- test-case-name: tests.integration.test_daemon -*-
from twisted.application.service import ServiceMaker

luna2d = ServiceMaker("luna2d", "luna2d.tap", "The luna2d cluster-provisioning daemon.", "luna2d")
