using Backup.Commands.Access;
using Backup.Commands.Agents;
using Backup.Commands.Alerts;
using Backup.Commands.DataSources;
using Backup.Commands.Dispatching;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Repository;
using Backup.Commands.Restores;
using Backup.Commands.Scheduling;
using Backup.Commands.VaultTransfers;
using Marten;

namespace Backup.Commands;

/// <summary>
/// Every published event type with its stable alias. An alias never changes and never moves to another
/// type: a new shape is a new event with a new alias.
/// </summary>
public static class BackupEvents
{
    /// <summary>The alias of <see cref="BackupRequested"/>, for the few readers that query the event rows directly.</summary>
    public const string BackupRequestedAlias = "backup_requested.v1";

    public static void Register(StoreOptions options)
    {
        var events = options.Events;
        events.MapEventType<EnrolmentTokenIssued>("enrolment_token_issued.v1");
        events.MapEventType<EnrolmentTokenRedeemed>("enrolment_token_redeemed.v1");
        events.MapEventType<AgentEnrolled>("agent_enrolled.v1");
        events.MapEventType<ProtectionGroupCreated>("protection_group_created.v1");
        events.MapEventType<DataSourceAddedToGroup>("data_source_added_to_group.v1");
        events.MapEventType<ShortTermPolicySet>("short_term_policy_set.v1");
        events.MapEventType<OnlinePolicySet>("online_policy_set.v1");
        events.MapEventType<OnlineThrottlingSet>("online_throttling_set.v1");
        events.MapEventType<AlertThresholdSet>("alert_threshold_set.v1");
        events.MapEventType<DataSourceProtected>("data_source_protected.v1");
        events.MapEventType<BackupRequested>(BackupRequestedAlias);
        events.MapEventType<BackupStarted>("backup_started.v1");
        events.MapEventType<PackWrittenToDisk>("pack_written_to_disk.v1");
        events.MapEventType<RecoveryPointCreated>("recovery_point_created.v1");
        events.MapEventType<RecoveryPointFailed>("recovery_point_failed.v1");
        events.MapEventType<VaultTransferStarted>("vault_transfer_started.v1");
        events.MapEventType<PackUploadedToVault>("pack_uploaded_to_vault.v1");
        events.MapEventType<VaultTransferCompleted>("vault_transfer_completed.v1");
        events.MapEventType<VaultTransferFailed>("vault_transfer_failed.v1");
        events.MapEventType<RestoreRequested>("restore_requested.v1");
        events.MapEventType<RestoreStarted>("restore_started.v1");
        events.MapEventType<RestoreCompleted>("restore_completed.v1");
        events.MapEventType<Restores.RestoreItemsFailed>("restore_items_failed.v1");
        events.MapEventType<RestoreFailed>("restore_failed.v1");
        events.MapEventType<JobLeaseExpired>("job_lease_expired.v1");
        events.MapEventType<JobRequeued>("job_requeued.v1");
        events.MapEventType<JobReleased>("job_released.v1");
        events.MapEventType<BackupItemsSkipped>("backup_items_skipped.v1");
        events.MapEventType<Backup.Commands.CheckingRecoveryPoints.RecoveryPointChecked>("recovery_point_checked.v1");
        events.MapEventType<RepositoryKeyCreated>("repository_key_created.v1");
        events.MapEventType<RepositoryPassphraseChanged>("repository_passphrase_changed.v1");
        events.MapEventType<ApiKeyIssued>("api_key_issued.v1");
        events.MapEventType<ApiKeyRevoked>("api_key_revoked.v1");
        events.MapEventType<SecurityPinIssued>("security_pin_issued.v1");
        events.MapEventType<SecurityPinUsed>("security_pin_used.v1");
        events.MapEventType<AlertRaised>("alert_raised.v1");
        events.MapEventType<AlertResolved>("alert_resolved.v1");
        events.MapEventType<OnlineBackupDue>("online_backup_due.v1");
        events.MapEventType<CollectingGarbage.PacksCondemned>("packs_condemned.v1");
        events.MapEventType<CollectingGarbage.PacksDeleted>("packs_deleted.v1");
        events.MapEventType<CheckingRecoveryPoints.ConsistencyCheckDue>("consistency_check_due.v1");
        events.MapEventType<CheckingRecoveryPoints.ConsistencyCheckCompleted>("consistency_check_completed.v1");
        events.MapEventType<RecoveryPointExpired>("recovery_point_expired.v1");
        events.MapEventType<DataSourceFiltersSet>("data_source_filters_set.v1");
        events.MapEventType<DataSourceRemoved>("data_source_removed.v1");
        events.MapEventType<DataSourceRemovedFromGroup>("data_source_removed_from_group.v1");
        events.MapEventType<RecoveryPointDeleted>("recovery_point_deleted.v1");
        events.MapEventType<Cataloguing.ItemsCatalogued>("items_catalogued.v1");
        events.MapEventType<Synchronising.SyncRequested>("sync_requested.v1");
        events.MapEventType<Synchronising.SyncStarted>("sync_started.v1");
        events.MapEventType<Synchronising.SyncPackWrittenToDisk>("sync_pack_written_to_disk.v1");
        events.MapEventType<Synchronising.ReplicaSynchronised>("replica_synchronised.v1");
        events.MapEventType<Synchronising.SyncFailed>("sync_failed.v1");
        events.MapEventType<GroupRunsSet>("group_runs_set.v1");
        events.MapEventType<GroupRuns.GroupRunRequested>("group_run_requested.v1");
        events.MapEventType<GroupRuns.BackupInGroupRun>("backup_in_group_run.v1");
        events.MapEventType<GroupRuns.GroupRunMemberStarted>("group_run_member_started.v1");
        events.MapEventType<GroupRuns.GroupRunMemberEnded>("group_run_member_ended.v1");
        events.MapEventType<GroupRuns.GroupRunCompleted>("group_run_completed.v1");
    }
}
