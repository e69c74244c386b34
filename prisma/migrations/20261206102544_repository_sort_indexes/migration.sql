-- CreateIndex
CREATE INDEX "Repository_updatedAt_id_idx" ON "Repository"("updatedAt", "id");

-- CreateIndex
CREATE INDEX "Repository_projectId_updatedAt_id_idx" ON "Repository"("projectId", "updatedAt", "id");

-- CreateIndex
CREATE INDEX "Repository_pullCount_id_idx" ON "Repository"("pullCount", "id");

-- CreateIndex
CREATE INDEX "Repository_projectId_pullCount_id_idx" ON "Repository"("projectId", "pullCount", "id");
