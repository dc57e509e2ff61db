# fleet-script: fix.service
# fleet-version: 1
# Starts a service (setting its start type first when asked, e.g. Disabled -> Manual).
# Idempotent: a running service with the right start type is left alone.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
$p = $ParamsJson | ConvertFrom-Json
$name = [string]$p.name
# Validate everything before changing anything (this used to run after Set-Service).
if ($p.action -ne 'start') { throw "fix.service: unsupported action '$($p.action)'" }
# Exactly this service: Get-Service -Name takes wildcards.
$svc = Get-Service -Name ([Management.Automation.WildcardPattern]::Escape($name))
$before = "$($svc.Status) ($($svc.StartType))"
if ($p.start_type -and ("$($svc.StartType)" -ne [string]$p.start_type)) {
    Set-Service -Name $svc.Name -StartupType ([string]$p.start_type)
}
if ($svc.Status -ne 'Running') { Start-Service -Name $svc.Name }
$svc = Get-Service -Name $svc.Name
$after = "$($svc.Status) ($($svc.StartType))"
$change = @{ target = "service $name"; before = $before; after = $after; changed = ($before -ne $after) }
Write-Frame @{ changes = @($change) }
