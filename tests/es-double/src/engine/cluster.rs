//! Cluster-level endpoints: `GET|HEAD /`, `GET /_cluster/health[/{index}]`,
//! and the index-not-found answer for `/{index}` (this double serves no index).

use super::*;

impl Engine {
    pub(super) fn root(&self, req: &Req, authn: &Authn) -> HandlerResult {
        req.check_params(&[])?;
        authorize(authn, "cluster:monitor/main", ActionContext::default())?;
        Ok((
            200,
            json!({
                "name": self.node_name,
                "cluster_name": "es-double",
                "cluster_uuid": self.cluster_uuid,
                "version": {
                    "number": VERSION,
                    "build_flavor": "default",
                    "build_type": "docker",
                    "build_hash": "1a77947f34deddb41af25e6f0ddb8e830159c179",
                    "build_date": "2024-08-05T10:05:34.233336849Z",
                    "build_snapshot": false,
                    "lucene_version": "9.11.1",
                    "minimum_wire_compatibility_version": "7.17.0",
                    "minimum_index_compatibility_version": "7.0.0"
                },
                "tagline": "You Know, for Search"
            }),
        ))
    }

    pub(super) fn health(&self, req: &Req, authn: &Authn) -> HandlerResult {
        req.check_params(&[
            "index",
            "wait_for_status",
            "timeout",
            "master_timeout",
            "level",
            "local",
            "wait_for_active_shards",
            "wait_for_nodes",
            "wait_for_events",
            "wait_for_no_relocating_shards",
            "wait_for_no_initializing_shards",
            "expand_wildcards",
            "ignore_unavailable",
            "allow_no_indices",
        ])?;
        if let Some(s) = req.param("wait_for_status") {
            if !["green", "yellow", "red"].contains(&s.to_ascii_lowercase().as_str()) {
                return Err(EsError::illegal_argument(format!(
                    "unknown cluster health status [{s}]"
                )));
            }
        }
        if let Some(level) = req.param("level") {
            if !["cluster", "indices", "shards"].contains(&level) {
                return Err(EsError::illegal_argument(format!(
                    "level must be one of [cluster, indices, shards] but was [{level}]"
                )));
            }
        }
        authorize(authn, "cluster:monitor/health", ActionContext::default())?;
        // The only index is the (hidden) security index: asking for any
        // concrete index times out red, as a node without that index does.
        let index = req.param("index").unwrap_or("");
        let known = index.is_empty() || index == "_all" || index == "*";
        let (status, timed_out, code, shards) = if known {
            ("green", false, 200, 1)
        } else {
            ("red", true, 408, 0)
        };
        Ok((
            code,
            json!({
                "cluster_name": "es-double",
                "status": status,
                "timed_out": timed_out,
                "number_of_nodes": 1,
                "number_of_data_nodes": 1,
                "active_primary_shards": shards,
                "active_shards": shards,
                "relocating_shards": 0,
                "initializing_shards": 0,
                "unassigned_shards": 0,
                "delayed_unassigned_shards": 0,
                "number_of_pending_tasks": 0,
                "number_of_in_flight_fetch": 0,
                "task_max_waiting_in_queue_millis": 0,
                "active_shards_percent_as_number": 100.0
            }),
        ))
    }

    pub(super) fn index(&self, req: &Req, authn: &Authn) -> HandlerResult {
        req.check_params(&[
            "index",
            "local",
            "ignore_unavailable",
            "allow_no_indices",
            "expand_wildcards",
            "flat_settings",
            "include_defaults",
            "master_timeout",
            "timeout",
            "features",
            "wait_for_active_shards",
        ])?;
        let index = req.var("index");
        let action = match req.method {
            "DELETE" => "indices:admin/delete",
            "PUT" => "indices:admin/create",
            _ => "indices:admin/get",
        };
        authorize_index(authn, action, &index)?;
        if req.method == "PUT" {
            return Err(EsError::illegal_argument(
                "es-double serves the security API only; index APIs are not implemented",
            ));
        }
        Err(EsError::index_not_found(&index))
    }
}
