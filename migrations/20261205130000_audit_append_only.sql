-- The audit log is append-only: an entry, once written, is neither changed
-- nor removed. (TRUNCATE does not fire row triggers.)
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION ohmnibus_refuse_update();
