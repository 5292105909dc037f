-- Daily jobs: one row per organisation, job and business date. Inserting the row is the
-- lease, so several service instances never run the same job for the same day twice.
CREATE TABLE job_runs (
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    job TEXT NOT NULL,
    run_date DATE NOT NULL,
    status TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    summary TEXT,
    PRIMARY KEY (org_id, job, run_date)
);
