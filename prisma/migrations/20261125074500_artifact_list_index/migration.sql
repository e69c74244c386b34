-- CreateIndex
CREATE INDEX "Manifest_repositoryId_pushedAt_idx" ON "Manifest"("repositoryId", "pushedAt");
