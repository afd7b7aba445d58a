using Backup.Storage.Vault;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Backup.Api.Infrastructure;

public sealed class VaultHealthCheck(VaultStore vault) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default)
    {
        try
        {
            await vault.Container.GetPropertiesAsync(cancellationToken: ct);
            return HealthCheckResult.Healthy($"Vault container '{vault.Container.Name}' reachable.");
        }
        catch (Exception e)
        {
            return HealthCheckResult.Unhealthy($"Vault container '{vault.Container.Name}' unreachable: {e.Message}");
        }
    }
}
