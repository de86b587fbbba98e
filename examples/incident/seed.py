"""Seed the 2021-07-27 incident environment into the emulator and the ES double.

Mirrors tests/testkit/src/replica.rs:

* Elasticsearch: role `catalogue_read` and the five catalogue users, each with
  a random 32-hex-character password.
* Secrets Manager: `elasticsearch/catalogue_api/{user}/username` and
  `.../password` for each user.
* ECS: cluster `catalogue-api-2021-04-26` with prod-search-api (3 tasks),
  prod-items-api (3), stage-search-api (1) and stage-items-api (1). The search
  services read their secrets by `/aws/reference/secretsmanager/NAME`, the
  items services by the full secret ARN. Prod and stage share the users.

Rerunning it re-seeds: new passwords in ES and in the secrets, new task
definition revisions and a fresh deployment of every service, so the end state
is consistent again. Environment: see replica.py. Never prints a password.
"""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import replica as r  # noqa: E402


def random_password() -> str:
    """32 lowercase hex characters, as replica.rs makes them."""
    return r.sensitive(secrets.token_hex(16))


def seed_elasticsearch(passwords: dict[str, str]) -> None:
    es = r.es_client()
    es.security.put_role(name=r.ROLE, cluster=r.ROLE_CLUSTER_PRIVILEGES, indices=r.ROLE_INDICES)
    r.say(f"elasticsearch: role {r.ROLE}")
    for user in r.USERS:
        es.security.put_user(
            username=user,
            password=passwords[user],
            roles=[r.ROLE],
            full_name=f"catalogue API {user}",
            metadata={"provisioned_by": r.PROVISIONED_BY},
        )
        r.say(f"elasticsearch: user {user}")


def seed_secrets(passwords: dict[str, str]) -> dict[str, str]:
    """Create the ten secrets; returns name -> ARN."""
    sm = r.aws("secretsmanager")
    arns: dict[str, str] = {}
    for user in r.USERS:
        for field, value in (("username", user), ("password", passwords[user])):
            name = r.secret_name(user, field)
            description = f"Elasticsearch {field} for the catalogue API's {user} user"
            arns[name] = r.store_secret(sm, name, value, description)["ARN"]
            r.say(f"secretsmanager: {name}")
    return arns


def container(user: str, environment: str, secret_refs: dict[str, str], region: str, es_host: str) -> dict[str, Any]:
    return {
        "name": "app",
        "image": f"760097843905.dkr.ecr.{region}.amazonaws.com/uk.ac.wellcome/{user}_api:latest",
        "essential": True,
        "portMappings": [{"containerPort": 8888}],
        "environment": [
            {"name": "es_host", "value": es_host},
            {"name": "es_protocol", "value": "http"},
            {"name": "apm_environment", "value": environment},
        ],
        "secrets": [{"name": env, "valueFrom": value_from} for env, value_from in sorted(secret_refs.items())],
    }


def register_task_definition(ecs: Any, family: str, definition: dict[str, Any], account: str) -> str:
    return ecs.register_task_definition(
        family=family,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="512",
        memory="1024",
        executionRoleArn=f"arn:aws:iam::{account}:role/catalogue-api-task-execution-role",
        containerDefinitions=[definition],
    )["taskDefinition"]["taskDefinitionArn"]


def create_or_update_service(ecs: Any, name: str, task_definition: str, desired: int) -> str:
    """CreateService, or on a rerun point the existing service at the new revision."""
    existing = ecs.describe_services(cluster=r.CLUSTER, services=[name])["services"]
    if existing and existing[0]["status"] == "ACTIVE":
        return ecs.update_service(
            cluster=r.CLUSTER,
            service=name,
            taskDefinition=task_definition,
            desiredCount=desired,
            forceNewDeployment=True,
        )["service"]["serviceArn"]
    return ecs.create_service(
        cluster=r.CLUSTER,
        serviceName=name,
        taskDefinition=task_definition,
        desiredCount=desired,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [r.SUBNET], "assignPublicIp": "DISABLED"}},
    )["service"]["serviceArn"]


def seed_ecs(arns: dict[str, str]) -> None:
    ecs = r.aws("ecs")
    ecs.create_cluster(clusterName=r.CLUSTER)
    r.say(f"ecs: cluster {r.CLUSTER}")
    region = r.aws_region()
    account = next(iter(arns.values())).split(":")[4]
    es_host = r.es_url().removeprefix("http://")
    for name, user, desired in r.SERVICES:
        environment = name.split("-", 1)[0]

        def value_from(field: str) -> str:
            secret = r.secret_name(user, field)
            return f"/aws/reference/secretsmanager/{secret}" if user == "search" else arns[secret]

        refs = {r.USERNAME_ENV: value_from("username"), r.PASSWORD_ENV: value_from("password")}
        definition = container(user, environment, refs, region, es_host)
        task_definition = register_task_definition(ecs, name, definition, account)
        create_or_update_service(ecs, name, task_definition, desired)
        r.say(f"ecs: service {name} ({desired} task{'s' if desired > 1 else ''}) reads {user}'s secrets")


def seed() -> None:
    started = time.monotonic()
    passwords = {user: random_password() for user in r.USERS}
    seed_elasticsearch(passwords)
    arns = seed_secrets(passwords)
    seed_ecs(arns)
    r.say(f"seeded the incident replica in {time.monotonic() - started:.2f} s")


if __name__ == "__main__":
    r.main(seed)
