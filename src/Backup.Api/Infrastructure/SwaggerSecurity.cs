using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace Backup.Api.Infrastructure;

public static class SwaggerSecurity
{
    /// <summary>"Authorize" in Swagger UI takes the whole header value, "ApiKey &lt;key&gt;", and sends it on every call.</summary>
    public static void AddAccessSecurity(this SwaggerGenOptions o)
    {
        o.AddSecurityDefinition(ApiKeyAuthenticationHandler.SchemeName, new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Header,
            Name = "Authorization",
            Description = "People: 'ApiKey <key>' (a key from POST /api/access/keys, or the bootstrap admin key). Roles: admin, operator, auditor.",
        });
        o.AddSecurityRequirement(document => new OpenApiSecurityRequirement
        {
            [new OpenApiSecuritySchemeReference(ApiKeyAuthenticationHandler.SchemeName, document)] = [],
        });
        o.OperationFilter<SecurityPinParameter>();
    }

    /// <summary>Destructive operations show the X-Security-Pin header they need.</summary>
    private sealed class SecurityPinParameter : IOperationFilter
    {
        public void Apply(OpenApiOperation operation, OperationFilterContext context)
        {
            var metadata = context.ApiDescription.ActionDescriptor.EndpointMetadata;
            var always = metadata.OfType<RequiresSecurityPin>().Any();
            var variant = metadata.OfType<DestructiveQueryValue>().FirstOrDefault();
            if (!always && variant is null) return;
            operation.Parameters ??= [];
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = Backup.Commands.Access.SecurityPin.Header,
                In = ParameterLocation.Header,
                Required = always,
                Description = always
                    ? "A PIN from POST /api/access/security-pin (valid 5 minutes, once)."
                    : $"With {variant!.Parameter}={variant.Value} (admin only): a PIN from POST /api/access/security-pin (valid 5 minutes, once).",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String },
            });
        }
    }
}
