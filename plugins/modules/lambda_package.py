#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lambda_package
short_description: Build a reproducible AWS Lambda deployment zip of the agent and its wheelhouse
version_added: 0.2.0
description:
  - Builds the zip AWS Lambda's Python runtime expects from the application package directory O(source), put
    under its own name (for example C(app/)), and every wheel of the wheelhouse tar O(wheelhouse) that
    M(agentops.deploy.agent_wheelhouse) gathered, unpacked at the zip's root with its C(*.dist-info/).
  - The zip is reproducible, so the same inputs give the same C(CodeSha256) on any run and controller with the same
    Python; its entries are sorted, hold files only, one fixed time (1980-01-01), Unix modes 0644 or 0755 and one
    compression level, and no extra fields or comments. Bytecode (C(__pycache__), C(*.pyc), C(*.pyo)) is left out.
  - A wheel member whose path is absolute or climbs out with C(..), and two wheels (or a wheel and O(source)) that
    write the same path with different contents, fail the module, naming them.
  - The sizes are checked against O(max_zip_size) and O(max_unpacked_size) before O(dest) is touched; the zip is
    written to a temporary file next to O(dest) and moved over it, and only when its bytes changed.
  - "Run it on the controller (C(delegate_to: localhost)), where the wheelhouse is."
author:
  - agentops.deploy maintainers (@agentops)
options:
  source:
    description: The application package directory, for example C(files/agent/app).
    type: path
    required: true
  wheelhouse:
    description:
      - The uncompressed tar of wheels, the RV(agentops.deploy.agent_wheelhouse#module:path) of
        M(agentops.deploy.agent_wheelhouse). Its wheels must be built for Lambda's runtime (its Python version and
        C(x86_64) or C(aarch64) machine).
    type: path
    required: true
  dest:
    description: The zip to write; its directory is created when missing.
    type: path
    required: true
  max_zip_size:
    description:
      - The largest zip allowed, in bytes. The default is what AWS Lambda accepts by direct upload (50 MiB).
    type: int
    default: 52428800
  max_unpacked_size:
    description:
      - The largest total size of the zip's files once unzipped, in bytes. The default is AWS Lambda's limit for a
        function's code and layers however the zip is uploaded (250 MiB).
    type: int
    default: 262144000
  release_config:
    description:
      - What defines the release besides the code (the function's settings, runtime, memory, ...). The release id,
        RV(release), is a digest of every file of the zip and of this; it is stamped into the zip as
        C(agentops_release.json), so a change of these settings alone changes the zip, and so the function's code.
    type: dict
    default: {}
extends_documentation_fragment:
  - agentops.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - Builds the zip in a temporary directory to measure it and check the limits, reports whether O(dest) would
        change, and leaves O(dest) alone.
  diff_mode:
    support: full
    details:
      - Shows the sha256 of O(dest) before and after.
  idempotent:
    support: full
    details:
      - A O(dest) with the same bytes is not written again and reports C(changed=false).
notes:
  - The bytes depend on Python's C(zipfile) and the zlib library deflating them; a controller with another zlib
    build (for example zlib-ng) may give another, equally valid, C(CodeSha256).
seealso:
  - module: agentops.deploy.agent_wheelhouse
  - name: Lambda quotas
    description: The deployment package size limits.
    link: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
"""

EXAMPLES = r"""
- name: Gather the agent's wheels for Lambda's Python 3.13 on x86_64
  agentops.deploy.agent_wheelhouse:
    lock: "{{ playbook_dir }}/files/agent/requirements.lock"
    cache_dir: "{{ lookup('env', 'HOME') }}/.cache/agentops/wheelhouse"
    python_version: "3.13"
    machine: x86_64
  delegate_to: localhost
  register: wheelhouse

- name: Build the agent's Lambda zip
  agentops.deploy.lambda_package:
    source: "{{ playbook_dir }}/files/agent/app"
    wheelhouse: "{{ wheelhouse.path }}"
    dest: "{{ playbook_dir }}/build/agent-lambda.zip"
  delegate_to: localhost
  register: lambda_zip
"""

RETURN = r"""
path:
  description: The zip, O(dest).
  returned: success
  type: str
  sample: /srv/build/agent-lambda.zip
size:
  description: The zip's size in bytes.
  returned: success
  type: int
  sample: 24117248
unpacked_size:
  description: The total size in bytes of the zip's files once unzipped.
  returned: success
  type: int
  sample: 70254592
files:
  description: How many files the zip holds.
  returned: success
  type: int
  sample: 3700
sha256:
  description: The zip's sha256, in hex.
  returned: success
  type: str
code_sha256:
  description: The base64 of the zip's raw sha256 digest, what AWS Lambda reports as the function's C(CodeSha256).
  returned: success
  type: str
  sample: 3q2+7w8aZ1E4lV0hD0x6mN2+oZk0p1d3Zy9xX6bQv5c=
release:
  description: The release id, C(r-) and ten hex digits of the digest of the code and O(release_config).
  returned: success
  type: str
  sample: r-5e6c99435c
"""

import os
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentops.deploy.plugins.module_utils.lambda_package import (
    MAX_UNPACKED_SIZE, MAX_ZIP_SIZE, LambdaPackageError, build, sha256_file)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            'source': {'type': 'path', 'required': True},
            'wheelhouse': {'type': 'path', 'required': True},
            'dest': {'type': 'path', 'required': True},
            'max_zip_size': {'type': 'int', 'default': MAX_ZIP_SIZE},
            'max_unpacked_size': {'type': 'int', 'default': MAX_UNPACKED_SIZE},
            'release_config': {'type': 'dict', 'default': {}},
        },
        supports_check_mode=True,
    )
    params = module.params
    for option in ('max_zip_size', 'max_unpacked_size'):
        if params[option] <= 0:
            module.fail_json(msg=f'{option} must be a positive number of bytes, not {params[option]}')
    dest = os.path.normpath(params['dest'])
    try:
        before = sha256_file(dest).hex() if os.path.isfile(dest) else None
        result = build(os.path.normpath(params['source']), os.path.normpath(params['wheelhouse']), dest,
                       params['max_zip_size'], params['max_unpacked_size'], module.check_mode,
                       params['release_config'])
    except LambdaPackageError as error:
        module.fail_json(msg=str(error))
    except OSError as error:
        module.fail_json(msg=f'cannot build the Lambda zip {dest}: {error}', exception=traceback.format_exc())
    if module._diff:
        result['diff'] = {'before_header': dest, 'after_header': dest,
                          'before': {'sha256': before} if before else {}, 'after': {'sha256': result['sha256']}}
    module.exit_json(**result)


if __name__ == '__main__':
    main()
