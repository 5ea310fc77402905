"""Lambda Python runtime shim for moto's Docker-backed Lambda.

moto runs `docker run IMAGE HANDLER EVENT_JSON` with the function's code
mounted at /var/task, its layers at /opt, and the Lambda environment
(_HANDLER, AWS_LAMBDA_FUNCTION_*, AWS_REGION, AWS_ENDPOINT_URL, ...). It takes
the LAST line of the container's stderr+stdout (stderr first) as the response
and a non-zero exit status as a function error. So this shim runs the handler
with everything it prints sent to stderr (as Lambda sends prints to the logs),
then writes the result as the only line on stdout: json.dumps(result) and exit
0, or the Lambda error shape {"errorMessage", "errorType", "stackTrace"} and
exit 1. Standard library only (Python 3.13).
"""

import importlib
import json
import os
import signal
import sys
import time
import traceback
import uuid

RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))


class Context:
    """The attributes and method of Lambda's context object that code uses."""

    def __init__(self, deadline: float) -> None:
        env = os.environ
        region = env.get("AWS_REGION", "us-east-1")
        # moto does not pass the account id; 123456789012 is moto's default.
        account = env.get("AWS_ACCOUNT_ID", "123456789012")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:{account}:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[{self.function_version}]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _timed_out(signum, frame):
    raise TimeoutError(
        f"Task timed out after {os.environ.get('AWS_LAMBDA_FUNCTION_TIMEOUT')} seconds"
    )


def main() -> int:
    handler_name = sys.argv[1] if len(sys.argv) > 1 else os.environ["_HANDLER"]
    event = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    timeout = int(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))
    # Lambda sets both; moto only AWS_REGION, and boto3 reads AWS_DEFAULT_REGION.
    if "AWS_REGION" in os.environ:
        os.environ.setdefault("AWS_DEFAULT_REGION", os.environ["AWS_REGION"])

    # Lambda's search order: the function, then layers, then the runtime's
    # own packages (boto3), so a function's bundled boto3 wins.
    paths = ["/var/task", "/opt/python/lib/python3.13/site-packages", "/opt/python", RUNTIME_DIR]
    sys.path[:] = paths + [p for p in sys.path if p not in paths]

    # Everything the function prints, even from subprocesses, goes to stderr
    # (the logs); the real stdout carries only the result line.
    result_out = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)

    try:
        module_name, func_name = handler_name.rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), func_name)
        signal.signal(signal.SIGALRM, _timed_out)
        signal.alarm(timeout)
        try:
            result = handler(event, Context(time.monotonic() + timeout))
        finally:
            signal.alarm(0)
        line, status = json.dumps(result), 0
    except Exception as e:
        traceback.print_exc()
        line, status = json.dumps({
            "errorMessage": str(e),
            "errorType": type(e).__name__,
            "stackTrace": traceback.format_list(traceback.extract_tb(e.__traceback__)),
        }), 1
    sys.stdout.flush()
    sys.stderr.flush()
    result_out.write(line + "\n")
    result_out.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
