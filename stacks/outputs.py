"""The stack's output names: the stack writes them, `dialctl --stack` reads them.

Plain names, no CDK import: dialctl loads this module without the CDK.
"""

from __future__ import annotations

import enum


class Output(enum.StrEnum):
    DIAL_TASKS_QUEUE_URL = "DialTasksQueueUrl"
    DIAL_TASKS_DLQ_URL = "DialTasksDlqUrl"
    LIVE_MAX_CPS_PARAMETER_NAME = "LiveMaxCpsParameterName"
    MAX_CPS_CEILING = "MaxCpsCeiling"
    CALL_EVENTS_QUEUE_URL = "CallEventsQueueUrl"
    CALL_EVENTS_SEND_POLICY_ARN = "CallEventsSendPolicyArn"
    MAX_CONCURRENT_CALLS_LIMIT = "MaxConcurrentCallsLimit"
    DASHBOARD_NAME = "DashboardName"
    METRICS_NAMESPACE = "MetricsNamespace"
