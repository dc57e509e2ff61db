# fleet-script: fix.firewall_rule
# fleet-version: 1
# Enables/disables a firewall rule and/or sets its profiles. Idempotent.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
$p = $ParamsJson | ConvertFrom-Json
$name = [string]$p.name
$changes = @()

# Before/after are read from the ActiveStore, as gather.ps1 reads them: what is in effect. The
# change itself goes to the PersistentStore (the default of Enable-/Set-NetFirewallRule), which is
# activated at once; if a Group Policy rule of the same name wins, after shows it unchanged.
function Get-Rule { Get-NetFirewallRule -Name $name -PolicyStore ActiveStore }
$rule = Get-Rule
if ($null -ne $p.enabled) {
    $before = ("$($rule.Enabled)" -eq 'True')
    if ($before -ne [bool]$p.enabled) {
        if ([bool]$p.enabled) { Enable-NetFirewallRule -Name $name } else { Disable-NetFirewallRule -Name $name }
    }
    $after = ("$((Get-Rule).Enabled)" -eq 'True')
    $changes += @{ target = "firewall rule $name"; before = $before; after = $after; changed = ($before -ne $after) }
}
if ($null -ne $p.profiles) {
    $wanted = @($p.profiles | ForEach-Object { [string]$_ })
    $before = "$($rule.Profile)"
    if ($before -ne ($wanted -join ', ')) { Set-NetFirewallRule -Name $name -Profile $wanted }
    $after = "$((Get-Rule).Profile)"
    $changes += @{ target = "firewall rule $name Profile"; before = $before; after = $after; changed = ($before -ne $after) }
}
Write-Frame @{ changes = @($changes) }
